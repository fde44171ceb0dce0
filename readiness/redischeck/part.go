package redischeck

import (
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
)

// Part is the assembly's part (app.Part) for this checker: a Checker over
// client (New, with opts) added to the readiness gate as name, with the
// check options given With (ComponentType "datastore" unless they set
// another). With Owned, the client is closed after the server has
// stopped. An invalid option fails app.New, naming the part.
func Part(name string, client redis.UniversalClient, opts ...Option) app.Part {
	return app.NewPart(fmt.Sprintf("redischeck.Part(%q)", name), func(a *app.App) error {
		c, err := New(client, opts...)
		if err != nil {
			return err
		}
		return app.Check(name, c, append([]probes.CheckOption{probes.ComponentType("datastore")}, c.cfg.check...)...).Attach(a)
	})
}

// With gives the check options (probes.Every, probes.Timeout,
// probes.Shared, probes.NonCritical, ...) that Part adds the check with.
// New alone ignores them: give them to the gate's Add.
func With(opts ...probes.CheckOption) Option {
	return func(c *config) error {
		c.check = append(c.check, opts...)
		return nil
	}
}
