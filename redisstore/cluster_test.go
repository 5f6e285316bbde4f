package redisstore

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// startCluster starts a three-master Redis Cluster on loopback ports.
func startCluster(t *testing.T) []string {
	t.Helper()
	server, cli := redisBinary(t, "redis-server"), redisBinary(t, "redis-cli")
	var addrs []string
	for range 3 {
		port := freePort(t)
		dir := t.TempDir()
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", dir+"/nodes.conf", "--dir", dir, "--save", "", "--appendonly", "no")
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	for _, a := range addrs {
		waitPing(t, a)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return addrs
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster did not converge: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond) // waiting on other processes
	}
}

// TestOnCluster runs the three stores on a Redis Cluster: the scripts and
// the token pipeline touch one hash-tagged slot each.
func TestOnCluster(t *testing.T) {
	addrs := startCluster(t)
	newClient := func() redis.UniversalClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx := context.Background()
	for _, ns := range []string{"merchant-a", "merchant-b", "merchant-c"} { // spread over slots
		opt := WithNamespace(ns)
		a, b := NewTokenStore(newClient(), opt), NewTokenStore(newClient(), opt)
		tok, err := a.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("tok-"+ns, time.Minute), nil })
		require.NoError(t, err)
		got, err := b.Load(ctx)
		require.NoError(t, err)
		require.NotNil(t, got, ns)
		assert.Equal(t, tok.AccessToken, got.AccessToken)
		require.NoError(t, b.Invalidate(ctx, got))
		got, err = a.Load(ctx)
		require.NoError(t, err)
		assert.Nil(t, got)
		assert.False(t, a.h.down.Load(), "no fallback: Cluster answered")

		l1, l2 := NewLimiter(newClient(), vpay.PlanGrowth, opt), NewLimiter(newClient(), vpay.PlanGrowth, opt)
		l1.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: time.Now().Add(20 * time.Second)}, false)
		w, err := l2.Reserve(ctx, time.Minute)
		require.NoError(t, err)
		assert.Greater(t, w.For, 15*time.Second, "%s: the other replica sees the spent window", ns)

		d1, d2 := NewDeduper(newClient(), time.Hour, opt), NewDeduper(newClient(), time.Hour, opt)
		ok, err := d1.Claim(ctx, "VP1:successful", "a", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, webhook.Claimed, ok)
		ok, err = d2.Claim(ctx, "VP1:successful", "b", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, webhook.InProgress, ok)
	}
}
