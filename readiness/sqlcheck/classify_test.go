package sqlcheck

import (
	"errors"
	"fmt"
	"testing"
)

type coded string

func (c coded) Error() string    { return "server error " + string(c) }
func (c coded) SQLState() string { return string(c) }

// Only a refusal for want of connection slots reads as busy; the rest of
// SQLSTATE class 53 (a full disk, no memory) is a database in trouble.
func TestTooManyConnections(t *testing.T) {
	for err, want := range map[error]bool{
		coded("53300"):                          true,
		coded("08004"):                          true,
		fmt.Errorf("query: %w", coded("53300")): true,
		coded("53100"):                          false, // disk_full
		coded("53200"):                          false, // out_of_memory
		coded("53400"):                          false, // configuration_limit_exceeded
		errors.New("Error 1040: Too many connections"):                                                     true,
		errors.New("Error 1203: User app already has more than 'max_user_connections' active connections"): true,
		errors.New("FATAL: sorry, too many clients already"):                                               true,
		errors.New("connection refused"):                                                                   false,
	} {
		if got := tooManyConnections(err); got != want {
			t.Errorf("tooManyConnections(%v) = %v, want %v", err, got, want)
		}
	}
}
