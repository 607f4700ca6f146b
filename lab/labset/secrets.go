package labset

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SecretFiles are the files WriteSecrets writes.
type SecretFiles struct {
	SAMCode    string // the SAM's activation code, one line
	KTPSecrets string // the two KTP-el installation secrets, one per line
}

// WriteSecrets writes the set's SAM activation code and its two KTP-el
// installation secrets into dir as sam-code and ktp-secrets, readable by
// the owner only (0600): the files kpectl read takes with --sam-code-file
// and --ktp-secrets-file, and the agent with sam.activation_code_file and
// sam.ktp_secrets_file. dir is created (0700) when missing; the two files
// are replaced when they exist.
func (m *Manifest) WriteSecrets(dir string) (SecretFiles, error) {
	if m.SAM.ActivationCode == "" || m.SAM.KTPSecret1 == "" || m.SAM.KTPSecret2 == "" {
		return SecretFiles{}, errors.New("labset: the manifest has no SAM activation code or KTP-el secrets")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SecretFiles{}, err
	}
	f := SecretFiles{SAMCode: filepath.Join(dir, "sam-code"), KTPSecrets: filepath.Join(dir, "ktp-secrets")}
	if err := writeSecret(f.SAMCode, m.SAM.ActivationCode+"\n"); err != nil {
		return SecretFiles{}, err
	}
	if err := writeSecret(f.KTPSecrets, m.SAM.KTPSecret1+"\n"+m.SAM.KTPSecret2+"\n"); err != nil {
		return SecretFiles{}, err
	}
	return f, nil
}

// writeSecret writes a file 0600, also when it existed with another mode.
func writeSecret(path, content string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("labset: %s: %w", path, err)
	}
	return nil
}

// TrustFile is the path of the set's trust list name ("bkn", "dukcapil",
// "backoffice"), dir being the set's directory.
func (m *Manifest) TrustFile(dir, name string) (string, error) {
	rel, ok := m.Trust[name]
	if !ok {
		return "", fmt.Errorf("labset: no trust list %q", name)
	}
	return filepath.Join(dir, rel), nil
}
