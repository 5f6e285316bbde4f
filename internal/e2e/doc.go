// Package e2e drives the sandbox's pages (vpaytest) in headless Chromium
// with chromedp: a module of its own, so that neither the core nor any
// module a merchant installs depends on a browser driver. Its tests need
// Debian's chromium (apt-get install chromium); without it they skip, and
// under CI=true they fail.
package e2e
