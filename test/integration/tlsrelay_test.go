package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/openshell-operator/openshell-operator/internal/gatewaysim"
)

// tlsRelay stands in front of the simulator as the gateway's TLS endpoint: it terminates TLS
// with the simulator's own server certificate, requires and verifies a client certificate
// like the gateway does, records which certificate each handshake presented, and relays the
// decrypted HTTP/2 bytes to the simulator over an mTLS connection of its own. Closing its
// connections forces the operator's client through a new handshake, like a gateway restart.
type tlsRelay struct {
	lis    net.Listener
	target string
	up     *tls.Config

	mu    sync.Mutex
	conns []*relayedConn
}

// relayedConn is one accepted client connection.
type relayedConn struct {
	serial string       // serial number of the client certificate it presented
	sent   atomic.Int64 // bytes the client sent on it
	closer sync.Once
	down   net.Conn
	upConn net.Conn
}

func (c *relayedConn) close() {
	c.closer.Do(func() {
		_ = c.down.Close()
		if c.upConn != nil {
			_ = c.upConn.Close()
		}
	})
}

// startTLSRelay listens on loopback and relays to target, the simulator started with b.
func startTLSRelay(b *gatewaysim.CertBundle, target string) (*tlsRelay, error) {
	serverPair, err := tls.X509KeyPair(b.ServerCert, b.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("server pair: %w", err)
	}
	clientPair, err := tls.X509KeyPair(b.ClientCert, b.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("client pair: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.CACert) {
		return nil, errors.New("no CA certificate in the bundle")
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serverPair},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"h2"},
	})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", target, err)
	}
	r := &tlsRelay{lis: lis, target: target, up: &tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{clientPair},
		NextProtos: []string{"h2"}, ServerName: host,
	}}
	go r.serve()
	return r, nil
}

// Addr is the host:port clients dial.
func (r *tlsRelay) Addr() string { return r.lis.Addr().String() }

func (r *tlsRelay) serve() {
	for {
		raw, err := r.lis.Accept()
		if err != nil {
			return
		}
		go r.relay(raw.(*tls.Conn))
	}
}

func (r *tlsRelay) relay(down *tls.Conn) {
	c := &relayedConn{down: down}
	// A handshake that fails (an unknown client certificate) is simply dropped, as the
	// gateway does; it records nothing.
	if err := down.Handshake(); err != nil {
		c.close()
		return
	}
	c.serial = down.ConnectionState().PeerCertificates[0].SerialNumber.String()
	up, err := tls.Dial("tcp", r.target, r.up)
	if err != nil {
		c.close()
		return
	}
	c.upConn = up
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	go func() {
		_, _ = io.Copy(up, countingReader{down, &c.sent})
		c.close()
	}()
	_, _ = io.Copy(down, up)
	c.close()
}

// Serials lists the client certificate serial of every handshake so far, oldest first.
func (r *tlsRelay) Serials() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.conns))
	for i, c := range r.conns {
		out[i] = c.serial
	}
	return out
}

// Sent is how many bytes the client has sent on its i-th connection.
func (r *tlsRelay) Sent(i int) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[i].sent.Load()
}

// DropAll closes every relayed connection, so the next call needs a new handshake.
func (r *tlsRelay) DropAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.close()
	}
}

// Close stops accepting and drops every connection.
func (r *tlsRelay) Close() {
	_ = r.lis.Close()
	r.DropAll()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// certSerial is the serial number of the first certificate in certPEM.
func certSerial(certPEM []byte) (string, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return "", errors.New("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("parse certificate: %w", err)
	}
	return cert.SerialNumber.String(), nil
}
