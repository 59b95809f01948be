package awsdynamodb

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth/awstest"
	"github.com/tidalscale/tidal/scalers/scalertest"
)

const (
	keyID  = "AKIDDYNAMOTEST"
	secret = "tidal-dynamo-secret"
	// pageSize makes the fake page like DynamoDB's 1 MB limit, so the scaler must follow LastEvaluatedKey.
	pageSize = 3
)

// fake answers DynamoDB's Query (AWS JSON 1.0) with Select COUNT over an in-memory table, after checking the
// SigV4 signature. The key condition supports "a = b [AND c op d]" with op one of = < <= > >=, operands being
// #name placeholders and :value placeholders of type S or N, as DynamoDB evaluates them.
type fake struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tables map[string][]map[string]string
}

type typed map[string]json.RawMessage

func newFake(t testing.TB) *fake {
	t.Helper()
	f := &fake{tables: map[string][]map[string]string{}}
	keys := awstest.Keys{keyID: secret}
	f.srv = httptest.NewServer(keys.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Header.Get("X-Amz-Target") != "DynamoDB_20120810.Query" {
			(&awstest.Error{Status: 400, Type: "com.amazonaws.dynamodb.v20120810#UnknownOperationException", Message: "unknown"}).Write(w)
			return
		}
		var in struct {
			TableName, KeyConditionExpression, Select string
			ExpressionAttributeNames                  map[string]string
			ExpressionAttributeValues                 map[string]typed
			ExclusiveStartKey                         map[string]typed
		}
		if err := json.Unmarshal(body, &in); err != nil {
			(&awstest.Error{Status: 400, Type: "com.amazonaws.dynamodb.v20120810#SerializationException", Message: err.Error()}).Write(w)
			return
		}
		f.mu.Lock()
		items, ok := f.tables[in.TableName]
		f.mu.Unlock()
		if !ok {
			(&awstest.Error{Status: 400, Type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", Message: "Requested resource not found"}).Write(w)
			return
		}
		if in.Select != "COUNT" {
			(&awstest.Error{Status: 400, Type: "com.amazonaws.dynamodb.v20120810#ValidationException", Message: "this fake counts only"}).Write(w)
			return
		}
		start := 0
		if k, ok := in.ExclusiveStartKey["pos"]; ok {
			var s string
			_ = json.Unmarshal(k["N"], &s)
			start, _ = strconv.Atoi(s)
		}
		count, pos := 0, start
		for ; pos < len(items) && pos < start+pageSize; pos++ {
			match, err := matches(items[pos], in.KeyConditionExpression, in.ExpressionAttributeNames, in.ExpressionAttributeValues)
			if err != nil {
				(&awstest.Error{Status: 400, Type: "com.amazonaws.dynamodb.v20120810#ValidationException", Message: err.Error()}).Write(w)
				return
			}
			if match {
				count++
			}
		}
		out := map[string]any{"Count": count, "ScannedCount": pos - start}
		if pos < len(items) {
			out["LastEvaluatedKey"] = map[string]any{"pos": map[string]string{"N": strconv.Itoa(pos)}}
		}
		awstest.WriteJSON(w, "application/x-amz-json-1.0", out)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func matches(item map[string]string, expr string, names map[string]string, values map[string]typed) (bool, error) {
	for _, cond := range strings.Split(expr, " AND ") {
		f := strings.Fields(cond)
		if len(f) != 3 {
			return false, &awstest.Error{Message: "Invalid KeyConditionExpression: " + cond}
		}
		name, ok := names[f[0]]
		if !ok {
			name = f[0]
		}
		tv, ok := values[f[2]]
		if !ok {
			return false, &awstest.Error{Message: "An expression attribute value used in expression is not defined: " + f[2]}
		}
		var want string
		isNum := false
		if raw, ok := tv["N"]; ok {
			_ = json.Unmarshal(raw, &want)
			isNum = true
		} else {
			_ = json.Unmarshal(tv["S"], &want)
		}
		got, ok := item[name]
		if !ok {
			return false, nil
		}
		var c int
		if isNum {
			a, _ := strconv.ParseFloat(got, 64)
			b, _ := strconv.ParseFloat(want, 64)
			c = map[bool]int{true: -1, false: 0}[a < b] + map[bool]int{true: 1, false: 0}[a > b]
		} else {
			c = strings.Compare(got, want)
		}
		ok = map[string]bool{"=": c == 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[f[1]]
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func (f *fake) put(table string, items ...map[string]string) {
	f.mu.Lock()
	f.tables[table] = append(f.tables[table], items...)
	f.mu.Unlock()
}

func job(status string, prio int) map[string]string {
	return map[string]string{"status": status, "priority": strconv.Itoa(prio)}
}

func (f *fake) trigger(md map[string]string) *scalers.TriggerConfig {
	base := map[string]string{"tableName": "jobs", "awsRegion": "eu-west-1", "awsEndpoint": f.srv.URL,
		"keyConditionExpression": "#s = :s", "expressionAttributeNames": `{"#s": "status"}`,
		"expressionAttributeValues": `{":s": {"S": "queued"}}`, "targetValue": "5"}
	return &scalers.TriggerConfig{Type: Type, Index: 1, Metadata: scalertest.With(base, md),
		AuthParams: map[string]string{"awsAccessKeyID": keyID, "awsSecretAccessKey": secret}}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	defaults := map[string]string{"tableName": "jobs", "awsRegion": "eu-west-1", "keyConditionExpression": "#s = :s",
		"expressionAttributeNames": `{"#s": "status"}`, "expressionAttributeValues": `{":s": {"S": "queued"}}`, "targetValue": "5"}
	auth := awstest.Auth()
	scalertest.ParseTableFunc(t, Type, ParseMetadata, append(awstest.CredentialCases[Metadata](defaults), []scalertest.ParseCase[Metadata]{
		{Name: "defaults", MD: defaults, Auth: auth, Check: func(t *testing.T, m Metadata) {
			if m.TargetValue != 5 || m.ActivationTargetValue != 0 || m.names["#s"] != "status" || len(m.values) != 1 || m.IndexName != "" {
				t.Errorf("defaults wrong: %+v", m)
			}
		}},
		{Name: "every type", MD: scalertest.WithPairs(defaults, "indexName", "by-status", "activationTargetValue", "2",
			"expressionAttributeValues", `{":s": {"S": "q"}, ":n": {"N": "3"}, ":b": {"BOOL": true}, ":z": {"NULL": true}}`), Auth: auth,
			Check: func(t *testing.T, m Metadata) {
				if m.IndexName != "by-status" || m.ActivationTargetValue != 2 || len(m.values) != 4 {
					t.Errorf("fields wrong: %+v", m)
				}
			}},
		{Name: "missing tableName", MD: scalertest.WithPairs(defaults, "tableName", scalertest.Delete), Auth: auth, WantErr: `"tableName"`},
		{Name: "missing keyConditionExpression", MD: scalertest.WithPairs(defaults, "keyConditionExpression", scalertest.Delete), Auth: auth, WantErr: `"keyConditionExpression"`},
		{Name: "blank keyConditionExpression", MD: scalertest.WithPairs(defaults, "keyConditionExpression", " "), Auth: auth, WantErr: "keyConditionExpression"},
		{Name: "names not JSON", MD: scalertest.WithPairs(defaults, "expressionAttributeNames", "#s=status"), Auth: auth, WantErr: "expressionAttributeNames"},
		{Name: "names empty", MD: scalertest.WithPairs(defaults, "expressionAttributeNames", "{}"), Auth: auth, WantErr: "expressionAttributeNames"},
		{Name: "values not JSON", MD: scalertest.WithPairs(defaults, "expressionAttributeValues", ":s=queued"), Auth: auth, WantErr: "expressionAttributeValues"},
		{Name: "values untyped", MD: scalertest.WithPairs(defaults, "expressionAttributeValues", `{":s": "queued"}`), Auth: auth, WantErr: "expressionAttributeValues"},
		{Name: "values two types", MD: scalertest.WithPairs(defaults, "expressionAttributeValues", `{":s": {"S": "a", "N": "1"}}`), Auth: auth, WantErr: ":s"},
		{Name: "values unsupported type", MD: scalertest.WithPairs(defaults, "expressionAttributeValues", `{":s": {"SS": ["a"]}}`), Auth: auth, WantErr: `type "SS"`},
		{Name: "values N not string", MD: scalertest.WithPairs(defaults, "expressionAttributeValues", `{":n": {"N": 3}}`), Auth: auth, WantErr: "N: want a JSON string"},
		{Name: "missing targetValue", MD: scalertest.WithPairs(defaults, "targetValue", scalertest.Delete), Auth: auth, WantErr: `"targetValue"`},
		{Name: "targetValue text", MD: scalertest.WithPairs(defaults, "targetValue", "five"), Auth: auth, WantErr: "targetValue: want integer"},
		{Name: "targetValue zero", MD: scalertest.WithPairs(defaults, "targetValue", "0"), Auth: auth, WantErr: "targetValue"},
		{Name: "activationTargetValue negative", MD: scalertest.WithPairs(defaults, "activationTargetValue", "-4"), Auth: auth, WantErr: "activationTargetValue"},
	}...), awstest.Secret)
}

func TestSample(t *testing.T) {
	f := newFake(t)
	s := scalertest.New[scalers.Scaler](t, New, f.trigger(map[string]string{"activationTargetValue": "2"}))
	if specs := s.MetricSpecs(); specs[0].External.Metric.Name != "s1-aws-dynamodb-jobs" || specs[0].External.Target.AverageValue.Value() != 5 {
		t.Fatalf("specs = %+v", specs[0].External)
	}
	if _, _, err := s.Sample(context.Background()); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("missing table: %v", err)
	}
	f.put("jobs", job("done", 1))
	if v, active := scalertest.Sample(t, s, "s1-aws-dynamodb-jobs"); v != 0 || active {
		t.Errorf("none queued: %v %v", v, active)
	}
	f.put("jobs", job("queued", 1), job("queued", 9))
	if v, active := scalertest.Sample(t, s, ""); v != 2 || active {
		t.Errorf("at activation: %v %v, want 2 false", v, active)
	}
	for i := 0; i < 7; i++ {
		f.put("jobs", job("queued", i), job("done", i))
	}
	// 9 queued items over 17 items: six pages of three.
	if v, active := scalertest.Sample(t, s, ""); v != 9 || !active {
		t.Errorf("above target, paged: %v %v, want 9 true", v, active)
	}
	urgent := scalertest.New[scalers.Scaler](t, New, f.trigger(map[string]string{"keyConditionExpression": "#s = :s AND #p >= :p",
		"expressionAttributeNames": `{"#s": "status", "#p": "priority"}`, "expressionAttributeValues": `{":s": {"S": "queued"}, ":p": {"N": "5"}}`}))
	if v, _ := scalertest.Sample(t, urgent, ""); v != 3 {
		t.Errorf("numeric condition: %v, want 3 (priorities 9, 5, 6)", v)
	}
}

func TestAuthAndServerDown(t *testing.T) {
	f := newFake(t)
	f.put("jobs", job("queued", 1))
	cfg := f.trigger(nil)
	cfg.AuthParams["awsSecretAccessKey"] = "wrong-dynamo-secret"
	scalertest.SampleFails(t, New, cfg, "InvalidSignatureException", "wrong-dynamo-secret")
	scalertest.SourceDown(t, scalertest.New[scalers.Scaler](t, New, f.trigger(nil)), f.srv.Close, "Query")
}

// BenchmarkSample measures one signed Query (two pages) against the local fake.
func BenchmarkSample(b *testing.B) {
	f := newFake(b)
	for i := 0; i < 5; i++ {
		f.put("jobs", job("queued", i))
	}
	scalertest.BenchmarkSample(b, scalertest.New[scalers.Scaler](b, New, f.trigger(nil)))
}
