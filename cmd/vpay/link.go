package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"rsc.io/qr"

	"github.com/vonsung/vpay-go"
)

func linkCmd(e *env) *cobra.Command {
	var (
		req     vpay.LinkRequest
		typ     string
		showQR  bool
		pngFile string
		qrOn    string
	)
	cmd := &cobra.Command{
		Use:   "link --name N",
		Short: "Create a payment link (and show its QR code)",
		Example: `  vpay link --name "School fees" --amount 10000 --type multiple
  vpay link --name "Tip the band" --qr                 # the payer chooses the amount
  vpay link --name Fees --amount 5000 --qr --qr-background light --png fees.png`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dark, err := darkBackground(qrOn, e.getenv)
			if err != nil {
				return err
			}
			req.Type = vpay.LinkType(typ)
			if err := req.Validate(); err != nil {
				return &exitError{exitUsage, err}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			l, err := c.CreateLink(cmd.Context(), &req)
			if err != nil {
				return err
			}
			var code *qr.Code
			if showQR || pngFile != "" {
				// Drawn here from the link's URL: no second request, and
				// the same code whatever the server's QR endpoint does.
				if code, err = qr.Encode(l.URL, qr.M); err != nil {
					return &exitError{exitAPI, fmt.Errorf("cannot encode %q as a QR code: %w", l.URL, err)}
				}
			}
			if pngFile != "" {
				if err := os.WriteFile(pngFile, code.PNG(), 0o644); err != nil {
					return &exitError{exitUsage, err}
				}
			}
			e.emit(map[string]any{"id": l.ID, "slug": l.Slug, "url": l.URL, "qr_code_url": l.QRCodeURL, "amount": l.Amount,
				"type": l.Type, "active": l.Active, "png": pngFile}, func(w io.Writer) {
				fmt.Fprintf(w, "Link %s: %s\n", l.ID, l.URL)
				if showQR {
					drawQR(w, code, dark)
				}
				if pngFile != "" {
					fmt.Fprintln(w, "QR code written to", pngFile)
				}
			})
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "the page's title")
	f.Int64Var(&req.Amount, "amount", 0, "fixed amount in RWF (0: the payer chooses)")
	f.StringVar(&typ, "type", "one_off", "one_off or multiple")
	f.StringVar(&req.Description, "description", "", "shown on the page")
	f.StringVar(&req.RedirectURL, "redirect-url", "", "where the payer goes after paying")
	f.BoolVar(&showQR, "qr", false, "draw the link's QR code in the terminal")
	f.StringVar(&pngFile, "png", "", "write the link's QR code to this PNG file")
	f.StringVar(&qrOn, "qr-background", "auto", "the terminal's background for --qr: dark, light, or auto (from COLORFGBG; dark when unknown)")
	_ = cmd.RegisterFlagCompletionFunc("type", fixedValues("one_off\tstops after the first payment", "multiple\ttakes any number of payments"))
	_ = cmd.RegisterFlagCompletionFunc("qr-background", fixedValues("auto", "dark", "light"))
	return cmd
}

// darkBackground decides --qr-background: auto reads COLORFGBG ("15;0":
// light text on colour 0), which many terminals set; without it, dark.
func darkBackground(flag string, getenv func(string) string) (bool, error) {
	switch flag {
	case "dark":
		return true, nil
	case "light":
		return false, nil
	case "auto", "":
		fgbg := getenv("COLORFGBG")
		bg, err := strconv.Atoi(fgbg[strings.LastIndexByte(fgbg, ';')+1:])
		// Colours 7 and 9-15 are the light ones of the 16-colour palette.
		light := err == nil && (bg == 7 || bg >= 9 && bg <= 15)
		return !light, nil
	}
	return false, usageError("--qr-background %q: dark, light or auto", flag)
}

// qrQuietZone is the light margin, in modules, that scanners need around
// a code (the QR specification asks for 4).
const qrQuietZone = 4

// drawQR draws code with half blocks, two modules a character, inside its
// quiet zone. A block is drawn in the terminal's text colour: on a dark
// background the light modules are blocks, on a light one the dark
// modules are, so the code is dark on light either way.
func drawQR(w io.Writer, code *qr.Code, darkBG bool) {
	black := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < code.Size && y < code.Size && code.Black(x, y)
	}
	// ink reports whether a module is drawn with the text colour.
	ink := func(x, y int) bool { return black(x, y) != darkBG }
	var b strings.Builder
	for y := -qrQuietZone; y < code.Size+qrQuietZone; y += 2 {
		for x := -qrQuietZone; x < code.Size+qrQuietZone; x++ {
			// Below the last row of the zone is the terminal itself.
			top, bottom := ink(x, y), y+1 < code.Size+qrQuietZone && ink(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		b.WriteRune('\n')
	}
	fmt.Fprint(w, b.String())
}
