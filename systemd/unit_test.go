package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the systemd-analyze security score docs/systemd.md records;
// a unit change that weakens the hardening fails this test.
const maxExposure = 1.5

func needAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing in CI (make test installs systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	return p
}

func TestUnitVerifies(t *testing.T) {
	sa := needAnalyze(t)
	dir := t.TempDir()
	unit, err := os.ReadFile("palid.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify insists that ExecStart exists; point it at a binary that does.
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/bin/palid", "/bin/true"))
	sock, err := os.ReadFile("palid.socket")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "palid.service"), unit, 0o644)
	os.WriteFile(filepath.Join(dir, "palid.socket"), sock, 0o644)
	out, err := exec.Command(sa, "verify", filepath.Join(dir, "palid.service"), filepath.Join(dir, "palid.socket")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestUnitSecurityExposure(t *testing.T) {
	sa := needAnalyze(t)
	out, err := exec.Command(sa, "security", "--offline=true", "palid.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for palid.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f: the unit lost hardening\n%s", score, maxExposure, out)
	}
	t.Logf("exposure level %.1f", score)
}

func TestUnitHardeningLines(t *testing.T) {
	unit, err := os.ReadFile("palid.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"Type=notify", "WatchdogSec=", "SupplementaryGroups=video gpio", "DevicePolicy=closed",
		"DeviceAllow=char-video4linux rw", "DeviceAllow=char-gpiochip rw", "ProtectSystem=strict",
		"StateDirectory=palid", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		"SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"ExecReload=/bin/kill -HUP $MAINPID",
	} {
		if !strings.Contains(string(unit), line) {
			t.Errorf("palid.service lacks %q", strings.TrimSpace(line))
		}
	}
}
