// Package registry builds the registry of every scaler Tidal ships. It is the only package that imports all of
// them, so each deployable decides whether to link the scalers (the operator and the metrics adapter do).
package registry

import (
	"github.com/tidalscale/tidal/scalers"
	"github.com/tidalscale/tidal/scalers/activemq"
	"github.com/tidalscale/tidal/scalers/awscloudwatch"
	"github.com/tidalscale/tidal/scalers/awsdynamodb"
	"github.com/tidalscale/tidal/scalers/awskinesis"
	"github.com/tidalscale/tidal/scalers/awssqs"
	"github.com/tidalscale/tidal/scalers/azureblob"
	"github.com/tidalscale/tidal/scalers/azureeventhub"
	"github.com/tidalscale/tidal/scalers/azurepipelines"
	"github.com/tidalscale/tidal/scalers/azurequeue"
	"github.com/tidalscale/tidal/scalers/azureservicebus"
	"github.com/tidalscale/tidal/scalers/beanstalkd"
	"github.com/tidalscale/tidal/scalers/cron"
	"github.com/tidalscale/tidal/scalers/datadog"
	"github.com/tidalscale/tidal/scalers/elasticsearch"
	"github.com/tidalscale/tidal/scalers/etcd"
	"github.com/tidalscale/tidal/scalers/external"
	"github.com/tidalscale/tidal/scalers/gcppubsub"
	"github.com/tidalscale/tidal/scalers/gcpstackdriver"
	"github.com/tidalscale/tidal/scalers/githubrunner"
	"github.com/tidalscale/tidal/scalers/graphite"
	"github.com/tidalscale/tidal/scalers/influxdb"
	"github.com/tidalscale/tidal/scalers/kafka"
	"github.com/tidalscale/tidal/scalers/kubeworkload"
	"github.com/tidalscale/tidal/scalers/loki"
	"github.com/tidalscale/tidal/scalers/metricsapi"
	"github.com/tidalscale/tidal/scalers/mysql"
	"github.com/tidalscale/tidal/scalers/nats"
	"github.com/tidalscale/tidal/scalers/newrelic"
	"github.com/tidalscale/tidal/scalers/postgresql"
	"github.com/tidalscale/tidal/scalers/prometheus"
	"github.com/tidalscale/tidal/scalers/rabbitmq"
	"github.com/tidalscale/tidal/scalers/redis"
	"github.com/tidalscale/tidal/scalers/resource"
	"github.com/tidalscale/tidal/scalers/solr"
)

// New returns a registry with every scaler registered, sharing one client store.
func New() *scalers.Registry {
	r := scalers.NewRegistry()
	for _, register := range []func(*scalers.Registry){
		activemq.Register,
		awscloudwatch.Register,
		awsdynamodb.Register,
		awskinesis.Register,
		awssqs.Register,
		azureblob.Register,
		azureeventhub.Register,
		azurepipelines.Register,
		azurequeue.Register,
		azureservicebus.Register,
		beanstalkd.Register,
		cron.Register,
		datadog.Register,
		elasticsearch.Register,
		etcd.Register,
		external.Register,
		gcppubsub.Register,
		gcpstackdriver.Register,
		githubrunner.Register,
		graphite.Register,
		influxdb.Register,
		kafka.Register,
		kubeworkload.Register,
		loki.Register,
		metricsapi.Register,
		mysql.Register,
		nats.Register,
		newrelic.Register,
		postgresql.Register,
		prometheus.Register,
		rabbitmq.Register,
		redis.Register,
		resource.Register,
		solr.Register,
	} {
		register(r)
	}
	return r
}
