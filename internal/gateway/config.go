package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// FromFiles builds a client from PEM files; certFile and keyFile may both be "".
func FromFiles(endpoint, caFile, certFile, keyFile string, opts ...Option) (*Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	var cert, key []byte
	if certFile != "" || keyFile != "" {
		if cert, err = os.ReadFile(certFile); err != nil {
			return nil, fmt.Errorf("read client certificate: %w", err)
		}
		if key, err = os.ReadFile(keyFile); err != nil {
			return nil, fmt.Errorf("read client key: %w", err)
		}
	}
	return FromCredentials(endpoint, ca, cert, key, opts...)
}

// gatewayMetadata is the part of the OpenShell CLI's gateways/<name>/metadata.json we use.
type gatewayMetadata struct {
	Name            string `json:"name"`
	GatewayEndpoint string `json:"gateway_endpoint"`
	AuthMode        string `json:"auth_mode,omitempty"`
}

var unsafeDirChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// ConfigDir is the OpenShell CLI's state directory: $XDG_CONFIG_HOME/openshell, defaulting
// to $HOME/.config/openshell.
func ConfigDir() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "openshell"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("locate OpenShell config: %w", err)
	}
	return filepath.Join(home, ".config", "openshell"), nil
}

// FromActiveCluster builds a client for the OpenShell CLI's active gateway: $OPENSHELL_GATEWAY
// or the active_gateway file names it; gateways/<name>/metadata.json gives the endpoint and
// gateways/<sanitized name>/mtls/ holds ca.crt, tls.crt and tls.key (CA only is allowed).
// An OIDC gateway (auth_mode "oidc") needs WithBearerToken; a plaintext one needs
// WithInsecurePlaintext.
func FromActiveCluster(opts ...Option) (*Client, error) {
	dir, err := ConfigDir()
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(os.Getenv("OPENSHELL_GATEWAY"))
	if name == "" {
		b, err := os.ReadFile(filepath.Join(dir, "active_gateway"))
		if err != nil {
			return nil, fmt.Errorf("no active OpenShell gateway (set OPENSHELL_GATEWAY or run 'openshell gateway select'): %w", err)
		}
		name = strings.TrimSpace(string(b))
	}
	if name == "" {
		return nil, errors.New("active OpenShell gateway name is empty")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "gateways", name, "metadata.json"))
	if err != nil {
		return nil, fmt.Errorf("read metadata of gateway %q: %w", name, err)
	}
	var md gatewayMetadata
	if err := json.Unmarshal(raw, &md); err != nil {
		return nil, fmt.Errorf("parse metadata of gateway %q: %w", name, err)
	}
	if md.GatewayEndpoint == "" {
		return nil, fmt.Errorf("metadata of gateway %q has no gateway_endpoint", name)
	}
	mtls := filepath.Join(dir, "gateways", unsafeDirChars.ReplaceAllString(name, "_"), "mtls")
	ca, err := os.ReadFile(filepath.Join(mtls, "ca.crt"))
	if err != nil && md.AuthMode != "plaintext" {
		return nil, fmt.Errorf("read CA of gateway %q: %w", name, err)
	}
	cert, certErr := os.ReadFile(filepath.Join(mtls, "tls.crt"))
	key, keyErr := os.ReadFile(filepath.Join(mtls, "tls.key"))
	if certErr != nil || keyErr != nil {
		cert, key = nil, nil
	}
	return FromCredentials(md.GatewayEndpoint, ca, cert, key, opts...)
}
