package redisstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// TestOnSentinel runs the stores through a Sentinel-managed failover
// client: a master and one sentinel watching it.
func TestOnSentinel(t *testing.T) {
	master := startRedis(t)
	sentinelPort := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	require.NoError(t, os.WriteFile(conf, []byte("port "+strconv.Itoa(sentinelPort)+"\nbind 127.0.0.1\ndir "+dir+
		"\nsentinel monitor vpay 127.0.0.1 "+strconv.Itoa(master.port)+" 1\n"), 0o600))
	cmd := exec.Command(master.path, conf, "--sentinel")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitPing(t, "127.0.0.1:"+strconv.Itoa(sentinelPort))

	newClient := func() redis.UniversalClient {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "vpay", SentinelAddrs: []string{"127.0.0.1:" + strconv.Itoa(sentinelPort)}})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx := context.Background()
	opt := ns(t)
	a, b := NewTokenStore(newClient(), opt), NewTokenStore(newClient(), opt)
	_, err := a.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("via-sentinel", time.Minute), nil })
	require.NoError(t, err)
	assert.False(t, a.h.down.Load(), "no fallback: the master was found through the sentinel")
	got, err := b.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "via-sentinel", got.AccessToken)

	d1, d2 := NewDeduper(newClient(), time.Hour, opt), NewDeduper(newClient(), time.Hour, opt)
	ok, _ := d1.Claim(ctx, "VP1:successful", "a", time.Minute)
	assert.Equal(t, webhook.Claimed, ok)
	ok, _ = d2.Claim(ctx, "VP1:successful", "b", time.Minute)
	assert.Equal(t, webhook.InProgress, ok)
}
