package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDecodeStatusAnswer is the figure behind decodeFlat's place: the
// documented transaction answer (pay_response_momo.json, the shape a Status
// answer and a webhook body share) into the same struct, by the one-pass
// decoder and by encoding/json, side by side in one run:
//
//	go test -run XXX -bench DecodeStatusAnswer -benchmem -count 5 ./internal/wire
func BenchmarkDecodeStatusAnswer(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pay_response_momo.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("flat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p plainTransaction
			if !decodeFlat(body, &p) {
				b.Fatal("the documented answer left the fast path")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var p plainTransaction
			if err := json.Unmarshal(body, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
