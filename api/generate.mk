# api/generate.mk — included by the top-level Makefile (-include api/generate.mk).
#
#   make generate       regenerates deepcopy, CRDs (charts/tidal/crds), clientset, listers and informers
#   make verify-api     fails if the generated files differ from what is checked in (for CI)
#
# Generator versions are pinned in api/generate.sh (CONTROLLER_TOOLS_VERSION, CODE_GENERATOR_VERSION); the tools
# are built once into bin/tools with `go install pkg@version` and never touch go.mod.

API_GENERATED := api/v1alpha1/zz_generated.deepcopy.go charts/tidal/crds api/client

.PHONY: generate generate-api verify-api

generate: generate-api

generate-api:
	api/generate.sh

verify-api: generate-api
	@if [ -n "$$(git status --porcelain -- $(API_GENERATED))" ]; then \
		echo "generated API files are out of date; run 'make generate' and commit:"; \
		git status --porcelain -- $(API_GENERATED); \
		exit 1; \
	fi
