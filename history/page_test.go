package history_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/startup"
)

type fixture struct {
	lc    *probes.Lifecycle
	ready *readiness.Gate
	page  *history.Page
	srv   *httptest.Server
	down  atomic.Bool
}

func newFixture(t testing.TB, opts ...history.PageOption) *fixture {
	t.Helper()
	return newFixtureReadBy(t, nil, opts...)
}

// isOp authorises the requests that say X-Op: yes.
func isOp(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }

// newFixtureReadBy is newFixture on a lifecycle whose read policy is
// readers (nil: nobody is authorised).
func newFixtureReadBy(t testing.TB, readers func(*http.Request) bool, opts ...history.PageOption) *fixture {
	t.Helper()
	f := &fixture{lc: probes.NewLifecycle(probes.Readers(readers))}
	warm, err := startup.New(f.lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error { p.Set(0.4); return nil }); err != nil {
		t.Fatal(err)
	}
	if f.ready, err = readiness.New(f.lc); err != nil {
		t.Fatal(err)
	}
	if err := f.ready.Add("db", probes.CheckFunc(func(context.Context) error {
		if f.down.Load() {
			return errors.New("dial postgres://app:s3cret@db: refused")
		}
		return nil
	}), probes.Every(5*time.Millisecond), probes.Local()); err != nil {
		t.Fatal(err)
	}
	h, err := history.New(f.lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if f.page, err = history.NewPage(f.lc, h, opts...); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.page)
	t.Cleanup(func() { f.page.Close(); f.srv.Close() })
	return f
}

func (f *fixture) get(t *testing.T, header ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// The page is whole without JavaScript: the phase, the gates, the checks
// and the timeline, with the testing contract's attributes, under a strict
// policy, small, and with no reason shown to an unauthorised reader.
func TestPageRenders(t *testing.T) {
	f := newFixture(t)
	testutil.Background(t, f.lc.Run)
	testutil.Eventually(t, "ready", func() bool { return f.ready.Report().Status() == probes.Pass })
	if code, _, _ := f.get(t, "Accept", "text/html"); code != 200 {
		t.Errorf("page while every check passes: %d, want 200", code)
	}
	f.down.Store(true)
	testutil.Eventually(t, "db failing", func() bool { return f.ready.Report().Status() == probes.Fail })
	// The page answers as the deep view does: 503 while a critical check
	// fails, so that a monitor reading it is not green through an outage.
	code, h, body := f.get(t, "Accept", "text/html")
	if code != 503 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("page while db fails: %d %s, want 503 text/html", code, h.Get("Content-Type"))
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "style-src 'sha256-", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, want := range []string{`data-phase="ready"`, `data-check="readiness/db" data-status="fail"`,
		`data-task="cache" data-progress="100"`, `data-transition data-subject="phase" data-from="warming" data-to="ready"`,
		"reason withheld", `data-gate="readiness" data-status="fail"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "s3cret") || strings.Contains(body, "refused") {
		t.Error("an unauthorised page shows the reason")
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "src=") {
		t.Error("the page loads something from elsewhere")
	}
	if len(body) > 50<<10 {
		t.Errorf("page is %d bytes, want under 50 KB", len(body))
	}
}

// An authorised reader sees the reason, masked.
func TestPageAuthorised(t *testing.T) {
	f := newFixtureReadBy(t, isOp)
	testutil.Background(t, f.lc.Run)
	f.down.Store(true)
	testutil.Eventually(t, "db failing", func() bool {
		c, _ := f.ready.Report().Check("db")
		return c.Status == probes.Fail && !c.Time.IsZero()
	})
	_, _, body := f.get(t, "X-Op", "yes")
	if !strings.Contains(body, "refused") || strings.Contains(body, "s3cret") {
		t.Errorf("authorised page: want the masked reason, got the reason shown %v, the password shown %v",
			strings.Contains(body, "refused"), strings.Contains(body, "s3cret"))
	}
}

// stream opens the event stream and returns a reader of its events.
func stream(t *testing.T, url string) (net.Conn, func() string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /?events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	br := bufio.NewReader(c)
	next := func() string {
		var b strings.Builder
		c.SetReadDeadline(time.Now().Add(testutil.Deadline))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if line == "\n" && b.Len() > 0 {
				return b.String()
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				b.WriteString(d)
			}
		}
	}
	return c, next
}

// A change reaches an open stream at once, rendered as the page renders it.
func TestStreamPushesChanges(t *testing.T) {
	f := newFixture(t, history.Refresh(time.Hour))
	testutil.Background(t, f.lc.Run)
	testutil.Eventually(t, "ready", func() bool { return f.ready.Report().Status() == probes.Pass })
	_, next := stream(t, f.srv.URL)
	if ev := next(); !strings.Contains(ev, `data-phase="ready"`) {
		t.Fatalf("first event: %s", ev)
	}
	testutil.Eventually(t, "one stream counted", func() bool { return f.page.Streams() == 1 })
	if _, err := f.lc.Cordon("swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	for ev := next(); !strings.Contains(ev, `data-cordon`); ev = next() {
	}
}

// An open stream gets the figures every Refresh with nothing changing,
// also once every stream before it has closed (the ticker runs only while
// a stream is open, and the one that opens starts it).
func TestStreamRefreshes(t *testing.T) {
	f := newFixture(t, history.Refresh(20*time.Millisecond))
	testutil.Background(t, f.lc.Run)
	testutil.Eventually(t, "ready", func() bool { return f.ready.Report().Status() == probes.Pass })
	for i := range 2 {
		c, next := stream(t, f.srv.URL)
		// The first event is the page as it is; with no change, the
		// next ones are the refreshes.
		for range 3 {
			next()
		}
		c.Close()
		testutil.Eventually(t, fmt.Sprintf("stream %d gone", i+1), func() bool { return f.page.Streams() == 0 })
	}
}

// Streams beyond the budget are refused; one that ends makes room.
func TestStreamBudget(t *testing.T) {
	// A reader that left is noticed at the next writes, which Refresh paces.
	f := newFixture(t, history.MaxStreams(2), history.Refresh(50*time.Millisecond))
	testutil.Background(t, f.lc.Run)
	c1, next1 := stream(t, f.srv.URL)
	next1()
	_, next2 := stream(t, f.srv.URL)
	next2()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"?events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a third stream: got %d, want 503", res.StatusCode)
	}
	c1.Close()
	testutil.Eventually(t, "room again", func() bool { return f.page.Streams() == 1 })
}

// A reader that stops reading is dropped, not buffered for.
func TestStalledReaderDropped(t *testing.T) {
	f := newFixture(t, history.Refresh(time.Hour))
	testutil.Background(t, f.lc.Run)
	c, next := stream(t, f.srv.URL)
	next()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(1024)
	}
	testutil.Eventually(t, "one stream", func() bool { return f.page.Streams() == 1 })
	// Many changes, each a new rendering, while nobody reads.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.down.Store(!f.down.Load())
			f.ready.Trigger("db")
			runtime.Gosched()
		}
	}()
	testutil.Eventually(t, "the stalled stream dropped", func() bool { return f.page.Streams() == 0 })
	close(stop)
	<-done
}

// Close ends the streams.
func TestCloseEndsStreams(t *testing.T) {
	f := newFixture(t)
	_, next := stream(t, f.srv.URL)
	next()
	testutil.Eventually(t, "one stream", func() bool { return f.page.Streams() == 1 })
	f.page.Close()
	testutil.Eventually(t, "no stream", func() bool { return f.page.Streams() == 0 })
}

func TestNewRejects(t *testing.T) {
	if _, err := history.NewPage(nil, nil); err == nil {
		t.Error("New(nil) accepted")
	}
	for _, o := range []history.PageOption{history.MaxStreams(0), history.Refresh(0)} {
		if _, err := history.NewPage(probes.NewLifecycle(), nil, o); err == nil {
			t.Error("a bad option accepted")
		}
	}
}

// A carriage return in the page's text (an error's, say) cannot start a
// field of its own in the event stream.
func TestStreamFramesCarriageReturns(t *testing.T) {
	f := newFixtureReadBy(t, func(*http.Request) bool { return true }, history.Refresh(time.Hour))
	if err := f.ready.Add("evil", probes.CheckFunc(func(context.Context) error {
		return errors.New("boom\revent: hijacked\rretry: 86400000\r\nid: 7")
	}), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, f.lc.Run)
	testutil.Eventually(t, "the evil check failed", func() bool { c, _ := f.ready.Report().Check("evil"); return !c.Time.IsZero() })
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /?events HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(testutil.Deadline))
	br := bufio.NewReader(c)
	for inBody := false; ; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !inBody {
			inBody = line == "\r\n"
			continue
		}
		if strings.Contains(line, "\r") {
			t.Fatalf("a carriage return in the stream: %q", line)
		}
		if line != "\n" && !strings.HasPrefix(line, "data: ") && !strings.HasPrefix(line, "retry: 1000") {
			t.Fatalf("a line that is not data: %q", line)
		}
		if strings.Contains(line, "hijacked") {
			return // inside a data line, where it is only text
		}
	}
}

// With a read policy, anonymous pages cannot take the places kept for the
// readers it accepts.
func TestStreamPlacesKeptForOperators(t *testing.T) {
	f := newFixtureReadBy(t, isOp, history.MaxStreams(4))
	for range 3 {
		_, next := stream(t, f.srv.URL)
		next()
	}
	get := func(op string) int {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"?events", nil)
		req.Header.Set("X-Op", op)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		res, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode
	}
	if code := get("no"); code != http.StatusServiceUnavailable {
		t.Errorf("a fourth anonymous page: got %d, want 503", code)
	}
	if code := get("yes"); code != http.StatusOK {
		t.Errorf("an operator's page with three anonymous ones open: got %d, want 200", code)
	}
}

// A cordon shows on the page with its reason (data-cordon), and a stream
// hears of it.
func TestPageShowsCordon(t *testing.T) {
	f := newFixtureReadBy(t, isOp)
	testutil.Background(t, f.lc.Run)
	testutil.Eventually(t, "ready", func() bool { return f.ready.Report().Status() == probes.Pass })
	_, next := stream(t, f.srv.URL)
	next() // the first rendering
	if _, err := f.lc.Cordon("disk <swap>", time.Hour); err != nil {
		t.Fatal(err)
	}
	// An anonymous reader hears that it is cordoned, never why.
	ev := next()
	for ; !strings.Contains(ev, `data-cordon=`); ev = next() {
	}
	if !strings.Contains(ev, `data-cordon=""`) || strings.Contains(ev, "swap") {
		t.Errorf("the anonymous stream's cordon: %s", ev)
	}
	_, _, body := f.get(t, "Accept", "text/html")
	if !strings.Contains(body, `data-cordon=""`) || strings.Contains(body, "swap") {
		t.Error("the anonymous page shows the cordon's reason, or no cordon")
	}
	_, _, body = f.get(t, "X-Op", "yes")
	for _, want := range []string{`data-cordon="disk &lt;swap&gt;"`, `data-gate="readiness" data-status="fail"`} {
		if !strings.Contains(body, want) {
			t.Errorf("cordoned page, authorised, lacks %s", want)
		}
	}
	if _, err := f.lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	if _, _, body := f.get(t, "Accept", "text/html"); strings.Contains(body, "data-cordon") {
		t.Error("the page still shows a cordon after uncordon")
	}
}

// Only an Accept that asks for a stream by q-value opens one, and HEAD
// never does: it gets the headers at once and holds no place.
func TestStreamOnlyWhenAskedFor(t *testing.T) {
	f := newFixture(t, history.Refresh(time.Hour))
	for _, tt := range []struct {
		name, method, query, accept string
		ctype                       string
	}{
		{"event-stream at q=0", http.MethodGet, "", "text/event-stream;q=0, text/html", "text/html"},
		{"html preferred", http.MethodGet, "", "text/html, text/event-stream;q=0.5", "text/html"},
		{"HEAD with ?events", http.MethodHead, "?events", "", "text/event-stream"},
		{"HEAD asking for a stream", http.MethodHead, "", "text/event-stream", "text/event-stream"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Deadline)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, tt.method, f.srv.URL+tt.query, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(res.Body) // a stream would never end
			res.Body.Close()
			if err != nil || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.ctype) {
				t.Errorf("%s: %d %s, %v; want %s, whole", tt.name, res.StatusCode, res.Header.Get("Content-Type"), err, tt.ctype)
			}
			if n := f.page.Streams(); n != 0 {
				t.Errorf("%s: %d streams open", tt.name, n)
			}
		})
	}
}

// A stream that opens gets the page as it is; the streams already open
// hear nothing of it, only of real changes.
func TestOpeningAStreamTellsNobodyElse(t *testing.T) {
	f := newFixture(t, history.Refresh(time.Hour))
	testutil.Background(t, f.lc.Run)
	testutil.Eventually(t, "ready", func() bool { return f.ready.Report().Status() == probes.Pass })
	_, first := stream(t, f.srv.URL)
	first()
	for range 5 {
		_, next := stream(t, f.srv.URL)
		if ev := next(); !strings.Contains(ev, `data-phase="ready"`) {
			t.Fatalf("an opening stream's first event: %s", ev)
		}
	}
	if _, err := f.lc.Cordon("swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ev := first(); !strings.Contains(ev, "data-cordon") {
		t.Errorf("the first stream's next event is not the cordon: it heard the openers\n%s", ev)
	}
}

// The streams are the lifecycle's work: they end when its Run does.
func TestRunEndsStreams(t *testing.T) {
	f := newFixture(t, history.Refresh(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.lc.Run(ctx) }()
	c, next := stream(t, f.srv.URL)
	next()
	cancel()
	<-done
	c.SetReadDeadline(time.Now().Add(testutil.Deadline))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("the stream after Run ended: %v, want it closed", err)
	}
	if _, err := history.NewPage(f.lc, nil); err == nil {
		t.Error("New after Run ended succeeded")
	}
}

// A transition the History records after the page rendered the same state
// (its watcher told after another that asked for the page) is on the page
// at the next request: the rendering follows the History too.
func TestPageShowsTransitionsRecordedAfterARendering(t *testing.T) {
	lc := probes.NewLifecycle()
	var page *history.Page
	lc.Watch(func(c probes.Change) {
		if c.Kind == probes.Moved && page != nil {
			page.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		}
	})
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if page, err = history.NewPage(lc, h, history.Refresh(time.Hour)); err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	if err := lc.Start(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if want := `data-transition data-subject="phase" data-from="cold" data-to="warming"`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("the page lacks the move the History recorded after a rendering:\n%s", rec.Body)
	}
}

// A reader the transport authorised (probes.WithAudience) sees the reasons
// on the page, with no Readers policy set, as on every other surface.
func TestPageHonoursTheTransportsAudience(t *testing.T) {
	lc := probes.NewLifecycle()
	page, err := history.NewPage(lc, nil, history.Refresh(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	testutil.Ready(t, lc)
	if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	defer lc.Uncordon() //nolint:errcheck // stops the cordon's timer
	get := func(authorised bool) string {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if authorised {
			req = req.WithContext(probes.WithAudience(req.Context(), probes.Authorized))
		}
		rec := httptest.NewRecorder()
		page.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	if body := get(true); !strings.Contains(body, `data-cordon="disk swap"`) {
		t.Errorf("the page for a reader the transport authorised lacks the cordon's reason:\n%s", body)
	}
	if body := get(false); strings.Contains(body, "disk swap") {
		t.Error("the page for an anonymous reader shows the cordon's reason")
	}
}

// TestPageTitle: the page is titled with the lifecycle's identity, HTML
// escaped; Title overrides it; without either it is "Service health".
func TestPageTitle(t *testing.T) {
	for _, tc := range []struct {
		id   probes.Identity
		opts []history.PageOption
		want string
	}{
		{probes.Identity{}, nil, "<title>Service health</title>"},
		{probes.Identity{Service: "shop", Release: "1.4.2", Instance: "shop-0"}, nil, "<title>shop 1.4.2 on shop-0</title>"},
		{probes.Identity{Service: "<b>shop</b>", Instance: "x"}, nil, "<title>&lt;b&gt;shop&lt;/b&gt; on x</title>"},
		{probes.Identity{Service: "shop", Instance: "x"}, []history.PageOption{history.Title("Items")}, "<title>Items</title>"},
	} {
		lc := probes.NewLifecycle(probes.Identify(tc.id))
		page, err := history.NewPage(lc, nil, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Header.Set("Accept", "text/html")
		page.ServeHTTP(rec, req)
		page.Close()
		if !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%+v: page lacks %s", tc.id, tc.want)
		}
	}
}

// pageOf serves lc's page with hist and returns a GET of it as an
// authorised reader (X-Op: yes) or not.
func pageOf(t *testing.T, lc *probes.Lifecycle, op bool) string {
	t.Helper()
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	page, err := history.NewPage(lc, h)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/html")
	if op {
		req.Header.Set("X-Op", "yes")
	}
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, req)
	return rec.Body.String()
}

// A normal warm-up shows as warming, not as a failure, with an estimate of
// the time left from its pace so far; times carry a date and a zone; the
// hour strip has a legend; a long reason may wrap anywhere.
func TestPageWarmingUp(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	lc := probes.NewLifecycle(probes.WithClock(clock), probes.Readers(isOp))
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		p.Set(0.25)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	defer close(release)
	testutil.Eventually(t, "a quarter warm", func() bool {
		r := warm.Report()
		return lc.Phase() == probes.Warming && len(r.Tasks) == 1 && r.Tasks[0].Fraction == 0.25
	})
	clock.Add(10 * time.Second) // 2.5% a second: 30 s left
	body := pageOf(t, lc, false)
	for _, want := range []string{
		`data-gate="startup" data-status="fail" class="warming">startup: <b>warming</b>`,
		`data-gate="readiness" data-status="fail" class="warming">readiness: <b>warming</b>`,
		`data-warming data-left="about 30s left"`, "2.5% a second", "done by about <time>2026-03-01 09:00:40 UTC</time>",
		`<span data-left>about 30s left</span>`,
		"since <time>2026-03-01 09:00:00 UTC</time>",
		`data-legend`, "overflow-wrap:anywhere", "max-width:40rem",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, `<b>fail</b>`) {
		t.Errorf("a normal warm-up shows a failure:\n%s", body)
	}
}

// A failing shared dependency, for which readiness only warns, says that
// the instance stays in rotation, and why.
func TestPageSharedDependency(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	if err := ready.Add("primary", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("refused")
		}
		return nil
	}), probes.Shared(), probes.Every(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "primary passed", func() bool { c, _ := ready.Report().Check("primary"); return c.EverPassed })
	down.Store(true)
	testutil.Eventually(t, "primary failing", func() bool { c, _ := ready.Report().Check("primary"); return c.Status == probes.Fail })
	body := pageOf(t, lc, false)
	for _, want := range []string{`data-shared-failing`, "<b>readiness/primary</b> fails", "<b>stays in rotation</b>",
		"every replica shares", `data-gate="readiness" data-status="warn"`, `data-shared`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}
