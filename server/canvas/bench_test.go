package canvas

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	canvasv1 "github.com/apiplatform/platform/gen/go/canvas/v1"
)

// BenchmarkDeltaEncoding reports the bytes a pixel costs on the gRPC wire
// in a stream batch (the StreamPixelsResponse as marshalled, framing
// included: 5 bytes a message), against a baseline of the obvious
// encoding, one Placement message (seq, x, y, colour) a pixel, for batches
// of the sizes the stream sends (a quiet second, the 2017 average rate, a
// busy second, a cleared rectangle's message).
//
//	go test -run '^$' -bench DeltaEncoding ./server/canvas/
func BenchmarkDeltaEncoding(b *testing.B) {
	for _, n := range []int{1, 10, 300, 3000, maxMessageDeltas} {
		b.Run(strconv.Itoa(n)+"px", func(b *testing.B) {
			deltas := make([]byte, 0, n*DeltaSize)
			base := &canvasv1.ListPixelHistoryResponse{}
			const w = 2000
			seq := int64(123_456_789)
			for i := range n {
				idx := (i * 7919) % (w * w)
				deltas = PackDelta(deltas, idx, int32(i%16))
				base.Placements = append(base.Placements, &canvasv1.Placement{
					Seq: seq + int64(i), X: int32(idx % w), Y: int32(idx / w), Color: int32(i % 16),
				})
			}
			msg := &canvasv1.StreamPixelsResponse{Event: &canvasv1.StreamPixelsResponse_Batch{
				Batch: &canvasv1.PixelBatch{FirstSeq: seq, LastSeq: seq + int64(n) - 1, Deltas: deltas},
			}}
			var size int
			for b.Loop() {
				out, err := proto.Marshal(msg)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			perPixel := float64(size+5) / float64(n)
			b.ReportMetric(perPixel, "wire-B/px")
			b.ReportMetric(perPixel/(float64(proto.Size(base)+5)/float64(n)), "x-baseline")
		})
	}
}
