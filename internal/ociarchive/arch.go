package ociarchive

import "runtime"

func runtimeArch() string { return runtime.GOARCH }
