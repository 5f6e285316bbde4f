// Command modpack packs modules from a working tree into a file-based Go
// module proxy, so that CI can prove each module installs with `go get` as
// a merchant's build would fetch it, before anything is tagged.
//
//	go run . -version v0.2.0 -out /tmp/proxy ../.. ../../redisstore
//
// Each directory must hold a go.mod; the module is zipped as the go command
// would zip it for that version (nested modules and vendor directories
// left out, file names and sizes checked), and the proxy gets its list,
// .info, .mod and .zip files. Point GOPROXY at file:///tmp/proxy.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	version := flag.String("version", "", "the version to pack every module at, e.g. v0.2.0")
	out := flag.String("out", "", "the proxy directory to write")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: modpack -version vX.Y.Z -out DIR MODULE_DIR...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*version, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "modpack:", err)
		os.Exit(1)
	}
}

func run(version, out string, dirs []string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("-version %q is not a canonical semantic version (vX.Y.Z)", version)
	}
	if out == "" || len(dirs) == 0 {
		return errors.New("need -out and at least one module directory")
	}
	for _, dir := range dirs {
		path, err := pack(version, out, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		fmt.Printf("packed %s@%s\n", path, version)
	}
	return nil
}

// pack writes one module's version into the proxy at out and returns its
// module path.
func pack(version, out, dir string) (string, error) {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	mf, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return "", err
	}
	if mf.Module == nil {
		return "", errors.New("go.mod has no module line")
	}
	mod := module.Version{Path: mf.Module.Mod.Path, Version: version}
	if err := module.Check(mod.Path, mod.Version); err != nil {
		return "", err
	}
	escaped, err := module.EscapePath(mod.Path)
	if err != nil {
		return "", err
	}
	vdir := filepath.Join(out, escaped, "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", err
	}
	zf, err := os.Create(filepath.Join(vdir, version+".zip"))
	if err != nil {
		return "", err
	}
	if err := zip.CreateFromDir(zf, mod, dir); err != nil {
		zf.Close()
		return "", err
	}
	if err := zf.Close(); err != nil {
		return "", err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	files := map[string][]byte{
		version + ".mod":  gomod,
		version + ".info": info,
		"list":            []byte(version + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return mod.Path, nil
}
