package setup

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHalfSetEnvironmentNamesTheMissingVariable(t *testing.T) {
	for _, tt := range []struct {
		user, key, base string
		want            string
	}{
		{"vpay_sandbox_x", "", "", "VPAY_API_KEY is not"},
		{"", "sk_sandbox_x", "", "VPAY_API_USER is not"},
		{"", "", "https://vonsung.rw/api/", "VPAY_API_USER and VPAY_API_KEY are not"},
	} {
		t.Setenv("VPAY_API_USER", tt.user)
		t.Setenv("VPAY_API_KEY", tt.key)
		t.Setenv("VPAY_BASE_URL", tt.base)
		_, _, _, err := Client()
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
	}
	t.Setenv("VPAY_API_USER", "")
	t.Setenv("VPAY_API_KEY", "")
	t.Setenv("VPAY_BASE_URL", "")
	c, sandbox, done, err := Client()
	require.NoError(t, err, "nothing set: the sandbox")
	defer done()
	assert.NotNil(t, c)
	assert.NotNil(t, sandbox)
}
