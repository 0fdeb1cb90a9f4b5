package ingest

import "sync"

// framePoolSizes bounds how many distinct buffer sizes a FramePool keeps
// free lists for; meeting one more size starts over with empty lists, so
// that a camera changing resolution back and forth cannot grow the pool.
const framePoolSizes = 8

// FramePool hands out frames whose pixel buffers are reused once released:
// Frame.Release puts a frame back, and Get returns a released frame of the
// same byte size when one is left. Free frames sit in a sync.Pool per size,
// so the garbage collector reclaims the ones nobody asks for again. A
// FramePool is safe for concurrent use; the zero value is not usable, call
// NewFramePool.
type FramePool struct {
	mu     sync.Mutex
	bySize map[int]*sync.Pool
	putFn  func(*Frame)
}

// NewFramePool returns an empty pool.
func NewFramePool() *FramePool {
	p := &FramePool{bySize: make(map[int]*sync.Pool)}
	p.putFn = p.put
	return p
}

// Get returns a frame of width x height packed BGR24 (Stride 3*width) whose
// Release gives it back to p. The other fields are zero and the pixels are
// whatever the buffer held before.
func (p *FramePool) Get(width, height int) *Frame {
	stride := 3 * width
	size := stride * height
	sp := p.sizePool(size)
	f, _ := sp.Get().(*Frame)
	if f == nil {
		f = &Frame{Pix: make([]byte, size)}
	}
	f.Width, f.Height, f.Stride = width, height, stride
	f.release = p.putFn
	return f
}

// sizePool returns the free list for buffers of size bytes.
func (p *FramePool) sizePool(size int) *sync.Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.bySize[size]
	if sp == nil {
		if len(p.bySize) >= framePoolSizes {
			clear(p.bySize)
		}
		sp = &sync.Pool{}
		p.bySize[size] = sp
	}
	return sp
}

// put takes a released frame back; frames of a size the pool no longer
// keeps are left to the garbage collector.
func (p *FramePool) put(f *Frame) {
	p.mu.Lock()
	sp := p.bySize[len(f.Pix)]
	p.mu.Unlock()
	if sp == nil {
		return
	}
	*f = Frame{Pix: f.Pix}
	sp.Put(f)
}
