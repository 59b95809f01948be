// Package e2e holds the end-to-end test behind the build tag e2e (`make e2e`): the released images run as real
// containers on the dev cluster's container node, installed by the Helm chart, and scale a Redis worker from
// zero and back. See e2e_test.go for what it needs and asserts.
package e2e
