package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/server"
)

// A service serves the admin handler on a Unix socket beside its HTTP
// server; probectl -socket PATH cordon -reason ... -for 30m then takes it
// out of rotation.
func Example() {
	lc := probes.NewLifecycle()
	h, err := admin.New(lc)
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "admin-example-")
	defer os.RemoveAll(dir)
	ln, err := admin.ListenUnix(filepath.Join(dir, "admin.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := h.Serving(ln)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := server.New(&http.Server{Handler: http.NotFoundHandler()}, lc, server.Also("admin", peer))
	fmt.Println(srv != nil, err)
	ln.Close() // the example does not run srv
	// Output: true <nil>
}

// GET /status answers the deep view, verbose, as authorised readers read
// it: the cordon's reason included. Here the peer is let in by a token, as
// over TCP; on the Unix socket, by its credentials.
func Example_status() {
	lc := probes.NewLifecycle()
	_ = lc.Start()
	_ = lc.MarkReady()
	if _, err := lc.Cordon("disk swap", 30*time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	h, err := admin.New(lc, admin.Authorize(func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer s3cret" }))
	if err != nil {
		fmt.Println(err)
		return
	}
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var doc struct {
		Status, Phase string
		Cordon        struct{ Reason string }
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &doc)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Println(doc.Status, doc.Phase, doc.Cordon.Reason)
	// Output:
	// 200 application/health+json
	// warn ready disk swap
}
