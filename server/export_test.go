package server

import "net/http"

// Track returns h wrapped as Run wraps the application's handler, for
// benchmarks of what that adds.
func Track(s *Server, h http.Handler) http.Handler { return s.track(h) }
