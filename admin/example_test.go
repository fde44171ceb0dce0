package admin_test

import (
	"fmt"
	"net/http"
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

// The same cordon a request to the handler makes, from code.
func ExampleHandler_Status() {
	lc := probes.NewLifecycle()
	_ = lc.Start()
	_ = lc.MarkReady()
	if _, err := lc.Cordon("disk swap", 30*time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	h, _ := admin.New(lc)
	st := h.Status()
	fmt.Println(st.Phase, st.Cordon.Reason, st.Cordon.Until.Sub(st.Cordon.Since))
	// Output: ready disk swap 30m0s
}
