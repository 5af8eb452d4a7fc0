// Package registryauth is the token authentication of Slipway's registry: the key that signs
// registry tokens and its certificate (which the registry trusts), the minting of a JWT that
// grants actions on repositories (the Docker registry token protocol), and the rules that say
// which actions a user, or a build, may have. The gateway's token service, the worker and the
// local stack share it, so every side signs and judges alike.
package registryauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// KeyFile is the file name of the signing key under SLIPWAY_HOME when
// SLIPWAY_REGISTRY_TOKEN_KEY does not name another.
const KeyFile = "registry-token.key"

// certValidity is how long the self-signed certificate is valid. The registry checks it on
// every token (the x5c chain), so it is long: the key, not the certificate, is the secret.
const certValidity = 10 * 365 * 24 * time.Hour

// Key signs registry tokens. Its certificate is what the registry's rootcertbundle holds.
type Key struct {
	priv    *ecdsa.PrivateKey
	certDER []byte
	// now is the clock tokens are minted by; nil is time.Now.
	now func() time.Time
}

// CertPath is where the certificate of the key at keyPath lives: beside it, ".crt" for ".key".
func CertPath(keyPath string) string {
	return strings.TrimSuffix(keyPath, ".key") + ".crt"
}

// LoadOrCreate reads the signing key at path and its certificate at CertPath(path), and makes
// both when the key does not exist yet (the key 0600). A lock
// file beside the key keeps two processes starting at once (gateway and worker) from making two
// keys.
func LoadOrCreate(path string) (*Key, error) {
	if path == "" {
		return nil, errors.New("registry token key path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating folder of registry token key: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking registry token key: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking registry token key: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	k, err := Load(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating registry token key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding registry token key: %w", err)
	}
	k = &Key{priv: priv}
	if err := k.writeCert(CertPath(path)); err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("writing registry token key: %w", err)
	}
	return k, nil
}

// Load reads the signing key at path and its certificate; an error wraps os.ErrNotExist when
// the key is missing. A missing certificate is made again from the key.
func Load(path string) (*Key, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading registry token key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("registry token key %s holds no EC PRIVATE KEY block", path)
	}
	priv, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing registry token key %s: %w", path, err)
	}
	k := &Key{priv: priv}
	certPath := CertPath(path)
	raw, err = os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return k, k.writeCert(certPath)
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry token certificate: %w", err)
	}
	block, _ = pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("registry token certificate %s holds no CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing registry token certificate %s: %w", certPath, err)
	}
	if !priv.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("registry token certificate %s is not of the key %s", certPath, path)
	}
	k.certDER = block.Bytes
	return k, nil
}

// writeCert makes the self-signed certificate of the key and writes it to path.
func (k *Key) writeCert(path string) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return fmt.Errorf("making certificate serial: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: Issuer + " registry token signer"},
		NotBefore:             now,
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.priv.PublicKey, k.priv)
	if err != nil {
		return fmt.Errorf("making registry token certificate: %w", err)
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("writing registry token certificate: %w", err)
	}
	k.certDER = der
	return nil
}

// CertificatePEM is the key's certificate, for the registry's rootcertbundle.
func (k *Key) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.certDER})
}

// writeFile writes through a temporary file and a rename, so no reader sees half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
