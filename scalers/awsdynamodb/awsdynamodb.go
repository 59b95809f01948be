// Package awsdynamodb implements the aws-dynamodb trigger: KEDA's AWS DynamoDB scaler. It scales on the number
// of items a Query matches (Select COUNT, every page summed).
//
// Metadata (KEDA names):
//
//	tableName                  required
//	indexName                  optional secondary index
//	keyConditionExpression     required, e.g. "#k = :v"
//	expressionAttributeNames   JSON object, e.g. {"#k": "status"}; required
//	expressionAttributeValues  JSON object in DynamoDB's typed form, e.g. {":v": {"S": "queued"}}; required.
//	                           Types S, N, BOOL and NULL are supported
//	targetValue                target items per replica (integer, >= 1); required
//	activationTargetValue      default 0; active when the count is above it
//	awsRegion, awsEndpoint, identityOwner and the credentials: see scalers/awsauth
//
// The metric is s<index>-aws-dynamodb-<tableName>. DynamoDB Streams could notify, but KEDA's semantics are a
// query count; this trigger polls.
package awsdynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/awsauth"
	"github.com/tidalscale/tidal/scalers/onemetric"
)

// Type is the trigger type served by this package.
const Type = "aws-dynamodb"

const (
	callTimeout = 30 * time.Second
	maxPages    = 100
)

// Register adds the aws-dynamodb trigger to r.
func Register(r *scalers.Registry) { r.Register(New, Type); r.Describe(Metadata{}, Type) }

// Metadata is the aws-dynamodb trigger's metadata.
type Metadata struct {
	awsauth.Metadata

	TableName                 string `tidal:"name=tableName"`
	IndexName                 string `tidal:"name=indexName,optional"`
	KeyConditionExpression    string `tidal:"name=keyConditionExpression"`
	ExpressionAttributeNames  string `tidal:"name=expressionAttributeNames"`
	ExpressionAttributeValues string `tidal:"name=expressionAttributeValues"`
	TargetValue               int64  `tidal:"name=targetValue,range=1;"`
	ActivationTargetValue     int64  `tidal:"name=activationTargetValue,default=0,range=0;"`

	names  map[string]string
	values map[string]types.AttributeValue
}

// Validate parses the JSON fields and checks the AWS parameters.
func (m *Metadata) Validate() error {
	errs := []error{m.Metadata.Validate()}
	if strings.TrimSpace(m.TableName) == "" {
		errs = append(errs, errors.New("tableName: must not be empty"))
	}
	if strings.TrimSpace(m.KeyConditionExpression) == "" {
		errs = append(errs, errors.New("keyConditionExpression: must not be empty"))
	}
	if err := json.Unmarshal([]byte(m.ExpressionAttributeNames), &m.names); err != nil || len(m.names) == 0 {
		errs = append(errs, errors.New(`expressionAttributeNames: want a JSON object such as {"#k": "status"}`))
	}
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(m.ExpressionAttributeValues), &raw); err != nil || len(raw) == 0 {
		errs = append(errs, errors.New(`expressionAttributeValues: want a JSON object such as {":v": {"S": "queued"}}`))
	} else {
		m.values = map[string]types.AttributeValue{}
		for k, typed := range raw {
			av, err := attributeValue(typed)
			if err != nil {
				errs = append(errs, fmt.Errorf("expressionAttributeValues: %s: %w", k, err))
				continue
			}
			m.values[k] = av
		}
	}
	return errors.Join(errs...)
}

// attributeValue converts one DynamoDB-JSON typed value ({"S": "x"}, {"N": "1"}, {"BOOL": true}, {"NULL": true}).
func attributeValue(typed map[string]json.RawMessage) (types.AttributeValue, error) {
	if len(typed) != 1 {
		return nil, errors.New(`want exactly one type key such as {"S": "x"}`)
	}
	for t, v := range typed {
		switch t {
		case "S", "N":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s: want a JSON string", t)
			}
			if t == "S" {
				return &types.AttributeValueMemberS{Value: s}, nil
			}
			return &types.AttributeValueMemberN{Value: s}, nil
		case "BOOL", "NULL":
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				return nil, fmt.Errorf("%s: want true or false", t)
			}
			if t == "BOOL" {
				return &types.AttributeValueMemberBOOL{Value: b}, nil
			}
			return &types.AttributeValueMemberNULL{Value: b}, nil
		default:
			return nil, fmt.Errorf("type %q is not supported (S, N, BOOL, NULL)", t)
		}
	}
	return nil, nil
}

// ParseMetadata parses and validates an aws-dynamodb trigger's metadata without connecting.
func ParseMetadata(cfg *scalers.TriggerConfig) (Metadata, error) {
	return awsauth.ParseMetadata[Metadata](cfg)
}

// Scaler is an aws-dynamodb trigger.
type Scaler struct {
	onemetric.Base
	meta   Metadata
	client *dynamodb.Client
}

// New builds an aws-dynamodb trigger: one External metric, s<index>-aws-dynamodb-<table>, targeting targetValue
// and active above activationTargetValue. Nothing is sent to AWS until the first Sample.
func New(ctx context.Context, cfg *scalers.TriggerConfig) (scalers.Scaler, error) {
	meta, awsCfg, err := awsauth.Build[Metadata](ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Scaler{meta: meta, client: dynamodb.NewFromConfig(awsCfg)}
	s.Base = onemetric.New(cfg, cfg.MetricName("aws-dynamodb", meta.TableName), float64(meta.TargetValue), float64(meta.ActivationTargetValue), s.count)
	s.Timeout = callTimeout
	return s, nil
}

// count counts the matching items over every page.
func (s *Scaler) count(ctx context.Context) (float64, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.meta.TableName),
		KeyConditionExpression:    aws.String(s.meta.KeyConditionExpression),
		ExpressionAttributeNames:  s.meta.names,
		ExpressionAttributeValues: s.meta.values,
		Select:                    types.SelectCount,
	}
	if s.meta.IndexName != "" {
		in.IndexName = aws.String(s.meta.IndexName)
	}
	var n int64
	for page := 0; ; page++ {
		if page == maxPages {
			return 0, s.Cfg.Errorf("tableName %s: query still paging after %d pages", s.meta.TableName, maxPages)
		}
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return 0, s.Cfg.Errorf("tableName %s: Query: %s", s.meta.TableName, s.meta.Redact(err.Error()))
		}
		n += int64(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return float64(n), nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
