package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
)

// checkpoint is where an interrupted reconcile resumes.
type checkpoint struct {
	Done       int `json:"done"` // data rows checked and written
	Mismatches int `json:"mismatches"`
}

func reconcileCmd(e *env) *cobra.Command {
	var out, cpFile string
	cmd := &cobra.Command{
		Use: "reconcile FILE.csv",
		Example: `  vpay reconcile payments.csv                       # writes payments.reconciled.csv
  vpay reconcile export.csv --out checked.csv --json`,
		Short: "Check every transaction of a CSV (transaction_id, optional reference and amount) and report mismatches",
		Long: `reconcile reads a CSV whose header names a transaction_id column (and
optionally reference and amount, the amount you expect), checks each
transaction's status as background work (at most half of each rate-limit
window, never a 429), and writes each row's status and mismatch to --out.
It resumes where it stopped from its checkpoint file. Exit 1 when any row
does not match (not successful, another amount or reference, not found,
a transaction id claimed by two rows). A UTF-8 byte-order mark (Excel's
"CSV UTF-8") is accepted; output cells that a spreadsheet would run as a
formula (starting with = + - @, tab or CR) are written with a leading '.`,
		Args: args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if out == "" {
				out = strings.TrimSuffix(a[0], ".csv") + ".reconciled.csv"
			}
			if cpFile == "" {
				cpFile = out + ".checkpoint"
			}
			return reconcile(cmd.Context(), e, c, a[0], out, cpFile)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the result (default FILE.reconciled.csv)")
	cmd.Flags().StringVar(&cpFile, "checkpoint", "", "where to keep progress (default OUT.checkpoint)")
	return cmd
}

func reconcile(ctx context.Context, e *env, c *vpay.Client, in, out, cpFile string) error {
	rows, cols, err := readCSV(in)
	if err != nil {
		return err
	}
	// Every row's line in the file, by transaction id: one payment claimed
	// by two orders is a mismatch, wherever the rows are and however
	// often the run resumed.
	claims := map[string][]int{}
	for i, row := range rows {
		if id := field(row, cols, "transaction_id"); id != "" {
			claims[id] = append(claims[id], i+2)
		}
	}
	drawProgress := !e.json && isTerminal(e.stderr)
	var cp checkpoint
	if b, err := os.ReadFile(cpFile); err == nil {
		if err := json.Unmarshal(b, &cp); err != nil || cp.Done > len(rows) {
			return usageError("checkpoint %s does not belong to %s; remove it to start again", cpFile, in)
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if cp.Done > 0 {
		flags = os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(out, flags, 0o644)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	defer f.Close()
	w := csv.NewWriter(f)
	if cp.Done == 0 {
		_ = w.Write(neutralise([]string{"transaction_id", "reference", "expected_amount", "status", "amount", "mismatch"}))
	}
	bg := vpay.WithLowPriority(ctx)
	for i := cp.Done; i < len(rows); i++ {
		row := rows[i]
		id, ref, want := field(row, cols, "transaction_id"), field(row, cols, "reference"), field(row, cols, "amount")
		var t *vpay.Transaction
		for {
			t, err = c.Status(bg, id)
			var ae *vpay.Error
			if errors.Is(err, vpay.ErrRateLimited) && errors.As(err, &ae) && ctx.Err() == nil {
				// Past background work's share: wait for the next window,
				// and say so rather than go silent.
				wait := max(time.Until(ae.RateLimit.Reset), 50*time.Millisecond)
				waiting(e, wait, drawProgress)
				select {
				case <-time.After(wait):
					continue
				case <-ctx.Done():
				}
			}
			break
		}
		if ctx.Err() != nil {
			w.Flush()
			return &exitError{exitAPI, fmt.Errorf("interrupted after %d of %d rows; run again to resume", cp.Done, len(rows))}
		}
		rec := []string{id, ref, want, "", "", ""}
		var mismatch string
		switch {
		case err != nil:
			mismatch = "error: " + err.Error()
		default:
			rec[3], rec[4] = string(t.Status), strconv.FormatInt(t.Amount, 10)
			var problems []string
			if t.Status != vpay.StatusSuccessful {
				problems = append(problems, "status "+string(t.Status))
			}
			if want != "" && want != rec[4] {
				problems = append(problems, "amount "+rec[4]+" not "+want)
			}
			if ref != "" && t.Reference != "" && ref != t.Reference {
				problems = append(problems, "reference "+t.Reference+" not "+ref)
			}
			mismatch = strings.Join(problems, "; ")
		}
		if others := otherLines(claims[id], i+2); others != "" {
			mismatch = strings.TrimPrefix(mismatch+"; transaction id also claimed by line "+others, "; ")
		}
		rec[5] = mismatch
		_ = w.Write(neutralise(rec))
		w.Flush()
		if err := w.Error(); err != nil {
			return &exitError{exitUsage, err}
		}
		cp.Done = i + 1
		if mismatch != "" {
			cp.Mismatches++
		}
		b, _ := json.Marshal(cp)
		if err := os.WriteFile(cpFile, b, 0o644); err != nil {
			return &exitError{exitUsage, err}
		}
		if drawProgress {
			progress(e.stderr, cp.Done, len(rows))
		}
	}
	if drawProgress {
		fmt.Fprintln(e.stderr)
	}
	_ = os.Remove(cpFile) // finished: the next run starts afresh
	e.emit(map[string]any{"rows": len(rows), "mismatches": cp.Mismatches, "out": out}, func(w io.Writer) {
		fmt.Fprintf(w, "%d transactions checked, %d mismatches; written to %s\n", len(rows), cp.Mismatches, out)
	})
	if cp.Mismatches > 0 {
		return &exitError{exitMismatches, fmt.Errorf("%d mismatches", cp.Mismatches)}
	}
	return nil
}

func readCSV(path string) ([][]string, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &exitError{exitUsage, err}
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	all, err := r.ReadAll()
	if err != nil || len(all) == 0 {
		return nil, nil, usageError("%s: not a CSV with a header: %v", path, err)
	}
	// Excel's "CSV UTF-8" starts the file with a byte-order mark.
	all[0][0] = strings.TrimPrefix(all[0][0], "\ufeff")
	cols := map[string]int{}
	for i, h := range all[0] {
		cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	if _, ok := cols["transaction_id"]; !ok {
		return nil, nil, usageError("%s has no transaction_id column", path)
	}
	return all[1:], cols, nil
}

func field(row []string, cols map[string]int, name string) string {
	if i, ok := cols[name]; ok && i < len(row) {
		return strings.TrimSpace(row[i])
	}
	return ""
}

func progress(w io.Writer, done, total int) {
	const width = 30
	n := width * done / max(total, 1)
	fmt.Fprintf(w, "\r[%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(" ", width-n), done, total)
}

// otherLines lists the lines in lines other than own ("" when none).
func otherLines(lines []int, own int) string {
	var others []string
	for _, l := range lines {
		if l != own {
			others = append(others, strconv.Itoa(l))
		}
	}
	return strings.Join(others, ", ")
}

// neutralise keeps a spreadsheet from running a cell as a formula: a cell
// starting with = + - @, tab or CR gets a leading ' (OWASP's advice for
// CSV injection). The CSV writer quotes what needs quoting.
func neutralise(rec []string) []string {
	for i, c := range rec {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			rec[i] = "'" + c
		}
	}
	return rec
}

// waiting says that reconcile waits for the rate-limit window, and how
// long: on stderr, as text, or as a JSON line under --json.
func waiting(e *env, d time.Duration, progressDrawn bool) {
	if e.json {
		b, _ := json.Marshal(map[string]any{"waiting_seconds": d.Seconds(), "reason": "rate_limit_window"})
		fmt.Fprintln(e.stderr, string(b))
		return
	}
	if progressDrawn {
		fmt.Fprintln(e.stderr)
	}
	fmt.Fprintf(e.stderr, "waiting %s for the next rate-limit window (reconcile uses at most half of each, so your live payments keep the rest)\n", d.Round(time.Millisecond))
}
