#!/usr/bin/env bash
# Regenerates everything derived from api/v1alpha1:
#   api/v1alpha1/zz_generated.deepcopy.go          controller-gen object
#   charts/tidal/crds/tidal.dev_*.yaml              controller-gen crd (one file per CRD)
#   api/client/clientset/versioned                  client-gen
#   api/client/listers                              lister-gen
#   api/client/informers/externalversions           informer-gen
#
# Usage: api/generate.sh            (from anywhere; run by `make generate`)
# The generators are pinned below and built with `go install pkg@version` into $TOOLS_BIN (default bin/tools),
# outside the module's requirements, so go.mod is never touched.
set -euo pipefail

CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.23.0}"
CODE_GENERATOR_VERSION="${CODE_GENERATOR_VERSION:-v0.37.2}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MODULE="github.com/tidalscale/tidal"
API_PKG="${MODULE}/api/v1alpha1"
CLIENT_PKG="${MODULE}/api/client"
BOILERPLATE="${ROOT}/api/boilerplate.go.txt"
CRD_DIR="${ROOT}/charts/tidal/crds"
TOOLS_BIN="${TOOLS_BIN:-${ROOT}/bin/tools}"

cd "${ROOT}"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# install_tool <dir> <pkg@version>...: builds the tools once per version.
install_tool() {
	local dir="$1"
	shift
	mkdir -p "${dir}"
	GOBIN="${dir}" go install "$@"
}

CG_BIN="${TOOLS_BIN}/controller-tools-${CONTROLLER_TOOLS_VERSION}"
KG_BIN="${TOOLS_BIN}/code-generator-${CODE_GENERATOR_VERSION}"
[[ -x "${CG_BIN}/controller-gen" ]] ||
	install_tool "${CG_BIN}" "sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_TOOLS_VERSION}"
if [[ ! -x "${KG_BIN}/client-gen" || ! -x "${KG_BIN}/lister-gen" || ! -x "${KG_BIN}/informer-gen" ]]; then
	install_tool "${KG_BIN}" \
		"k8s.io/code-generator/cmd/client-gen@${CODE_GENERATOR_VERSION}" \
		"k8s.io/code-generator/cmd/lister-gen@${CODE_GENERATOR_VERSION}" \
		"k8s.io/code-generator/cmd/informer-gen@${CODE_GENERATOR_VERSION}"
fi

echo "deepcopy (controller-gen ${CONTROLLER_TOOLS_VERSION})"
"${CG_BIN}/controller-gen" object:headerFile="${BOILERPLATE}" paths=./api/v1alpha1/...

echo "CRDs -> ${CRD_DIR#"${ROOT}/"}"
mkdir -p "${CRD_DIR}"
rm -f "${CRD_DIR}"/tidal.dev_*.yaml
"${CG_BIN}/controller-gen" crd:crdVersions=v1,generateEmbeddedObjectMeta=true paths=./api/v1alpha1/... output:crd:artifacts:config="${CRD_DIR}"
# The ScaledJob embeds a whole batch/v1 JobSpec (pod template): with descriptions its schema is ~700 KB, and
# `kubectl apply` (client-side) fails because the last-applied-configuration annotation exceeds 256 KiB. Its CRD is
# generated without descriptions (~75 KB as JSON); the other CRDs keep theirs for `kubectl explain`.
# api/v1alpha1/crd_apply_test.go checks every CRD fits.
NODESC_DIR="$(mktemp -d)"
trap 'rm -rf "${NODESC_DIR}"' EXIT
"${CG_BIN}/controller-gen" crd:crdVersions=v1,generateEmbeddedObjectMeta=true,maxDescLen=0 paths=./api/v1alpha1/... output:crd:artifacts:config="${NODESC_DIR}"
cp "${NODESC_DIR}/tidal.dev_scaledjobs.yaml" "${CRD_DIR}/tidal.dev_scaledjobs.yaml"

echo "clientset, listers, informers (code-generator ${CODE_GENERATOR_VERSION})"
rm -rf api/client/clientset api/client/listers api/client/informers
"${KG_BIN}/client-gen" \
	--go-header-file "${BOILERPLATE}" \
	--output-dir api/client/clientset \
	--output-pkg "${CLIENT_PKG}/clientset" \
	--clientset-name versioned \
	--input-base "${ROOT}" \
	--input api/v1alpha1
"${KG_BIN}/lister-gen" \
	--go-header-file "${BOILERPLATE}" \
	--output-dir api/client/listers \
	--output-pkg "${CLIENT_PKG}/listers" \
	"${API_PKG}"
"${KG_BIN}/informer-gen" \
	--go-header-file "${BOILERPLATE}" \
	--output-dir api/client/informers \
	--output-pkg "${CLIENT_PKG}/informers" \
	--versioned-clientset-package "${CLIENT_PKG}/clientset/versioned" \
	--listers-package "${CLIENT_PKG}/listers" \
	"${API_PKG}"

echo "done"
