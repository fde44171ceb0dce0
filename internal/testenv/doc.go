// Package testenv holds, in its subpackages, what the tests stand on and the
// library never imports: throwaway servers started from Debian's packages
// (pgtest, redistest, mariadbtest, dnstest), process control for them
// (proctest), and the polling and serving helpers every test shares
// (testutil). The runtime's machinery stays beside it in internal/.
package testenv
