// Package protos holds the generated client and server code of the externalgrpc protocol subset.
package protos

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative externalgrpc.proto
