package probes

// Verdict is the phase x gate table alone, for the tests that check every
// surface against it.
var Verdict = Kind.verdict
