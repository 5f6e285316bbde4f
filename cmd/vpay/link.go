package main

import (
	"fmt"
	"io"
	"os"
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
	)
	cmd := &cobra.Command{
		Use:   "link --name N",
		Short: "Create a payment link (and show its QR code)",
		Args:  args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
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
					drawQR(w, code)
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
	return cmd
}

// drawQR draws code with half blocks, two modules a character, with the
// quiet zone scanners need, dark on light whatever the terminal's colours.
func drawQR(w io.Writer, code *qr.Code) {
	const quiet = 2
	black := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < code.Size && y < code.Size && code.Black(x, y)
	}
	var b strings.Builder
	for y := -quiet; y < code.Size+quiet; y += 2 {
		for x := -quiet; x < code.Size+quiet; x++ {
			top, bottom := black(x, y), black(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune(' ')
			case top:
				b.WriteRune('▄')
			case bottom:
				b.WriteRune('▀')
			default:
				b.WriteRune('█')
			}
		}
		b.WriteRune('\n')
	}
	fmt.Fprint(w, b.String())
}
