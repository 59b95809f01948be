package azurite

import (
	"context"
	"testing"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

// SampleErrors runs, as parallel subtests, the failures every Azure Storage trigger must report with
// scalertest.SampleFails, never showing an account key: a wrong account key (403), an entity that does not exist
// (missing, an error containing notFound) and an unreachable server ("connect"). srv serves entity; trigger builds
// the trigger's configuration for an entity name and a connection string.
func SampleErrors[R scalers.Scaler](t *testing.T, srv Server, newFn func(context.Context, *scalers.TriggerConfig) (R, error),
	entity, missing, notFound string, trigger func(entity, conn string) *scalers.TriggerConfig) {
	t.Helper()
	wrongKey := "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
	down := Server{Endpoint: "http://127.0.0.1:1/" + Account, Service: srv.Service}
	for _, tc := range []struct{ name, entity, conn, wantErr string }{
		{name: "wrong account key", entity: entity, conn: srv.ConnectionString(wrongKey), wantErr: "403"},
		{name: srv.Service + " does not exist", entity: missing, conn: srv.ConnectionString(Key), wantErr: notFound},
		{name: "server down", entity: entity, conn: down.ConnectionString(Key), wantErr: "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			scalertest.SampleFails(t, newFn, trigger(tc.entity, tc.conn), tc.wantErr, wrongKey, Key)
		})
	}
}
