package scaledobject

import (
	"fmt"
	"strconv"

	tidalv1alpha1 "github.com/tidalscale/tidal/api/v1alpha1"
	"github.com/tidalscale/tidal/autoscaler/coreinput"
)

// pauseOf reads the pause annotations (Tidal's and KEDA's spellings). paused-replicas pins the target to a count;
// paused: "true" freezes it where it is. A malformed value, also of paused-scale-in or paused-scale-out (which the
// decision applies, coreinput.Map), is an error naming the annotation.
func pauseOf(so *tidalv1alpha1.ScaledObject) (paused bool, replicas *int32, err error) {
	if _, _, err := coreinput.PausedDirections(so); err != nil {
		return false, nil, err
	}
	if replicas, err := coreinput.PausedReplicas(so); err != nil || replicas != nil {
		return err == nil, replicas, err
	}
	for _, name := range []string{tidalv1alpha1.PausedAnnotation, tidalv1alpha1.KEDAPausedAnnotation} {
		v, ok := so.Annotations[name]
		if !ok {
			continue
		}
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return false, nil, fmt.Errorf("metadata.annotations[%s]: want true or false, got %q", name, v)
		}
		if b {
			return true, nil, nil
		}
	}
	return false, nil, nil
}
