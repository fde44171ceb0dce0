package accept

import (
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	probe := []Form{JSON, Text}
	page := []Form{JSON, Text, HTML, Events}
	tests := []struct {
		name   string
		accept []string
		offers []Form
		want   Form
	}{
		{"none", nil, page, JSON},
		{"kubelet", []string{"*/*"}, page, JSON},
		{"text", []string{"text/plain"}, probe, Text},
		{"text/* picks text over json", []string{"text/*"}, probe, Text},
		{"text/* ties text and html: text, offered first", []string{"text/*"}, page, Text},
		{"text refused by q=0", []string{"text/plain;q=0"}, probe, JSON},
		{"a browser", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, page, HTML},
		{"a browser at a probe", []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, probe, JSON},
		{"html at q=0 is not html", []string{"text/html;q=0, */*"}, page, JSON},
		{"html below json", []string{"text/html;q=0.5, application/json"}, page, JSON},
		{"EventSource", []string{"text/event-stream"}, page, Events},
		{"event-stream at q=0 is no stream", []string{"text/event-stream;q=0, application/json"}, page, JSON},
		{"event-stream at q=0 alone", []string{"text/event-stream;q=0"}, page, JSON},
		{"case-insensitive", []string{"Text/HTML"}, page, HTML},
		{"malformed q", []string{"text/html;q=x"}, page, JSON},
		{"two headers", []string{"application/json;q=0.1", "text/plain"}, probe, Text},
		{"ranges past the bound are not read", []string{strings.Repeat("a/b, ", maxRanges) + "text/plain"}, probe, JSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate(tt.accept, tt.offers...); got != tt.want {
				t.Errorf("Negotiate(%q): got %d, want %d", tt.accept, got, tt.want)
			}
		})
	}
}
