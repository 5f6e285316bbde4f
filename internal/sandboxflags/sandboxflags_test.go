package sandboxflags

import (
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

func parse(t *testing.T, args ...string) ([]vpaytest.Option, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := Register(fs)
	require.NoError(t, fs.Parse(args))
	return s.Options(io.Discard)
}

func TestPlansAndChecks(t *testing.T) {
	for _, tt := range []struct {
		plan string
		want int
	}{{"starter", vpay.PlanStarter.PerMinute}, {"Growth", vpay.PlanGrowth.PerMinute}} {
		opts, err := parse(t, "-addr", "127.0.0.1:0", "-plan", tt.plan, "-merchant", "Shop X")
		require.NoError(t, err)
		s, err := vpaytest.Start(opts...)
		require.NoError(t, err)
		c := s.Client()
		_, err = c.Status(t.Context(), "VP1")
		require.Error(t, err)
		assert.Equal(t, tt.want, c.RateLimit().Limit, "--plan %s", tt.plan)
		resp, err := http.Get(s.DashboardURL())
		require.NoError(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Contains(t, string(page), "Shop X", "--merchant reaches the pages")
		s.Close()
	}
	_, err := parse(t, "-plan", "enterprise")
	assert.ErrorContains(t, err, `--plan "enterprise"`)
	_, err = parse(t, "-merchant", " ")
	assert.ErrorContains(t, err, "--merchant")
}

func TestDefaultsAndPublicURL(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	set := Register(fs)
	require.NoError(t, fs.Parse(nil))
	assert.Equal(t, 2*time.Second, set.Delay, "a payment stays pending long enough to watch")
	assert.Equal(t, vpaytest.DefaultPromptTimeout, set.PromptAfter)
	assert.Equal(t, "127.0.0.1:8000", set.Addr, "loopback unless asked")

	for _, public := range []string{"", "http://shop.test:8000/"} {
		opts, err := parse(t, "-addr", "127.0.0.1:0", "-public-url", public)
		require.NoError(t, err)
		s, err := vpaytest.Start(opts...)
		require.NoError(t, err)
		if public == "" {
			assert.Equal(t, strings.TrimSuffix(s.URL, "api/"), s.DashboardURL())
		} else {
			assert.Equal(t, public, s.DashboardURL(), "--public-url is what pages carry")
		}
		s.Close()
	}
}
