package probes_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/probekit/probes"
)

func TestReportStatus(t *testing.T) {
	pass := probes.Result{Name: "a", Critical: true, Status: probes.Pass}
	failCrit := probes.Result{Name: "db", Critical: true, Status: probes.Fail}
	failSoft := probes.Result{Name: "cache", Critical: false, Status: probes.Fail}
	warnCrit := probes.Result{Name: "lag", Critical: true, Status: probes.Warn}
	tests := []struct {
		name    string
		base    probes.Status
		checks  []probes.Result
		exclude string
		want    probes.Status
	}{
		{"no checks passes on base", probes.Pass, nil, "", probes.Pass},
		{"base fail wins", probes.Fail, []probes.Result{pass}, "", probes.Fail},
		{"critical failure fails", probes.Pass, []probes.Result{pass, failCrit}, "", probes.Fail},
		{"non-critical failure warns", probes.Pass, []probes.Result{pass, failSoft}, "", probes.Warn},
		{"critical warning warns", probes.Pass, []probes.Result{warnCrit}, "", probes.Warn},
		{"excluded failure ignored", probes.Pass, []probes.Result{pass, failCrit}, "db", probes.Pass},
		{"exclude does not lift base", probes.Fail, []probes.Result{failCrit}, "db", probes.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probes.Report{Base: tt.base, Checks: tt.checks}
			got := r.StatusExcluding(func(n string) bool { return n == tt.exclude })
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if tt.exclude == "" && r.Status() != tt.want {
				t.Errorf("Status: got %s, want %s", r.Status(), tt.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want probes.Status
	}{
		{nil, probes.Pass},
		{fmt.Errorf("slow: %w", probes.ErrWarn), probes.Warn},
		{errors.New("down"), probes.Fail},
	}
	for _, tt := range tests {
		if got := probes.StatusOf(tt.err); got != tt.want {
			t.Errorf("StatusOf(%v): got %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, secret string
	}{
		{"url", `dial postgres://app:s3cret@db:5432/items failed`, "s3cret"},
		{"url with odd chars", `postgresql://app:p%40ss!word@db/x`, "p%40ss!word"},
		{"key value", `host=db user=app password=hunter2 dbname=x`, "hunter2"},
		{"quoted key value", `host=db password='two words' user=app`, "two words"},
		{"upper case env", `PGPASSWORD=topsecret psql`, "topsecret"},
		{"json", `{"password": "jsonsecret"}`, "jsonsecret"},
		{"malformed url", `cannot parse "postgres://app:leak@[bad": invalid`, "leak"},
		{"at sign in password", `postgres://u:p@ss@host/db`, "ss@host"},
		{"escaped quote", `password='se\'cret' user=x`, "cret"},
		{"bearer", `Authorization: Bearer eyJhbGciOi.abc`, "eyJhbGciOi"},
		{"api key", `api_key=k3y&x=1`, "k3y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := probes.Redact(tt.in)
			if strings.Contains(got, tt.secret) {
				t.Errorf("Redact(%q) = %q: still holds %q", tt.in, got, tt.secret)
			}
		})
	}
	if got := probes.Redact("host=db user=app"); got != "host=db user=app" {
		t.Errorf("text without secrets changed: %q", got)
	}
	cause := errors.New("password=abc")
	if err := probes.RedactError(cause); !errors.Is(err, cause) || strings.Contains(err.Error(), "abc") {
		t.Errorf("RedactError: got %q (Is %v), want masked text wrapping the cause", err, errors.Is(err, cause))
	}
}
