//go:build race

package vpaytest_test

const raceEnabled = true
