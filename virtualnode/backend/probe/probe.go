// Package probe runs Kubernetes probes for virtual-node backends the way the kubelet does: a loop with initial
// delay, period, timeout and success/failure thresholds, and the network handlers (HTTP GET, TCP connect). The
// exec handler is the backend's (it runs a command in the container), given to Loop as a check function.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Loop runs check every period of p (after its initial delay, each with p's timeout) and calls report with the
// thresholded result whenever one is decided: true after SuccessThreshold successes in a row, false after
// FailureThreshold failures in a row (the failure count then starts again). It returns when done is closed.
func Loop(p *corev1.Probe, done <-chan struct{}, check func(context.Context) error, report func(bool)) {
	period := secondsOr(p.PeriodSeconds, 10)
	timeout := secondsOr(p.TimeoutSeconds, 1)
	success := int(max(p.SuccessThreshold, 1))
	failure := int(max(p.FailureThreshold, 1))
	if p.FailureThreshold == 0 {
		failure = 3
	}
	select {
	case <-done:
		return
	case <-time.After(time.Duration(p.InitialDelaySeconds) * time.Second):
	}
	var okRun, failRun int
	for {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := check(ctx)
		cancel()
		if err == nil {
			okRun, failRun = okRun+1, 0
			if okRun >= success {
				report(true)
			}
		} else {
			failRun, okRun = failRun+1, 0
			if failRun >= failure {
				report(false)
				failRun = 0
			}
		}
		select {
		case <-done:
			return
		case <-time.After(period):
		}
	}
}

func secondsOr(s int32, def int) time.Duration {
	if s <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(s) * time.Second
}

// ErrNotNetwork is returned by Network for a probe whose handler is not HTTP GET or TCP.
var ErrNotNetwork = errors.New("not a network probe")

// Network runs p's HTTP GET or TCP socket handler once against host (the probe's own host when it names one;
// the pod IP otherwise). Named ports are resolved from ports. Other handlers return ErrNotNetwork.
func Network(ctx context.Context, p *corev1.Probe, host string, ports []corev1.ContainerPort) error {
	switch {
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, ports)
		if err != nil {
			return err
		}
		scheme := "http"
		if p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		if p.HTTPGet.Host != "" {
			host = p.HTTPGet.Host
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), p.HTTPGet.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("http probe: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("http probe: status %d", resp.StatusCode)
		}
		return nil
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, ports)
		if err != nil {
			return err
		}
		if p.TCPSocket.Host != "" {
			host = p.TCPSocket.Host
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("tcp probe: %w", err)
		}
		return conn.Close()
	default:
		return ErrNotNetwork
	}
}

// resolvePort resolves a probe port, by number or by container port name.
func resolvePort(p intstr.IntOrString, ports []corev1.ContainerPort) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("probe port %q: no container port with that name", p.StrVal)
}
