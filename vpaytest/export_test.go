package vpaytest

// MaxLiveStreams is the cap on open live-update streams, for the tests of
// the external test package.
const MaxLiveStreams = maxLiveStreams
