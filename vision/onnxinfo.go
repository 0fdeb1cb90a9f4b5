package vision

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ModelIO lists the graph inputs and outputs of an ONNX model, as read by
// ReadModelIO. Initializers that older exporters also list as inputs are
// left out: they are weights, not something flowwatch feeds.
type ModelIO struct {
	// Inputs and Outputs are in the model's order.
	Inputs, Outputs []ValueInfo
}

// ValueInfo is one graph input or output.
type ValueInfo struct {
	// Name is the tensor's name.
	Name string
	// Type is the element type; ElemUndefined for a value that is not a
	// tensor (a sequence or a map).
	Type ElemType
	// Dims is the shape, outermost first; nil when the model gives none.
	Dims []Dim
}

// Dim is one dimension of a tensor shape: a fixed size, a named symbolic
// size, or neither (unknown).
type Dim struct {
	// Value is the fixed size; 0 when the dimension is not fixed.
	Value int64
	// Param names a symbolic dimension, such as "batch".
	Param string
}

// Fixed reports whether the dimension has a fixed size.
func (d Dim) Fixed() bool { return d.Value > 0 }

// String writes the size, the symbolic name, or "?" when unknown.
func (d Dim) String() string {
	switch {
	case d.Value > 0:
		return strconv.FormatInt(d.Value, 10)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// String writes the value as "float32 [1,3,?,?]".
func (v ValueInfo) String() string {
	if v.Dims == nil {
		return v.Type.String() + " of unknown shape"
	}
	return v.Type.String() + " " + dimsString(v.Dims)
}

func dimsString(dims []Dim) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// ElemType is an ONNX tensor element type (TensorProto.DataType).
type ElemType int32

// The element types flowwatch names; others print as their number.
const (
	ElemUndefined ElemType = 0
	ElemFloat32   ElemType = 1
	ElemUint8     ElemType = 2
	ElemInt8      ElemType = 3
	ElemUint16    ElemType = 4
	ElemInt16     ElemType = 5
	ElemInt32     ElemType = 6
	ElemInt64     ElemType = 7
	ElemString    ElemType = 8
	ElemBool      ElemType = 9
	ElemFloat16   ElemType = 10
	ElemFloat64   ElemType = 11
	ElemUint32    ElemType = 12
	ElemUint64    ElemType = 13
	ElemBFloat16  ElemType = 16
)

// String returns the type's name, such as "float32".
func (t ElemType) String() string {
	switch t {
	case ElemUndefined:
		return "non-tensor"
	case ElemFloat32:
		return "float32"
	case ElemUint8:
		return "uint8"
	case ElemInt8:
		return "int8"
	case ElemUint16:
		return "uint16"
	case ElemInt16:
		return "int16"
	case ElemInt32:
		return "int32"
	case ElemInt64:
		return "int64"
	case ElemString:
		return "string"
	case ElemBool:
		return "bool"
	case ElemFloat16:
		return "float16"
	case ElemFloat64:
		return "float64"
	case ElemUint32:
		return "uint32"
	case ElemUint64:
		return "uint64"
	case ElemBFloat16:
		return "bfloat16"
	}
	return "elem_type " + strconv.Itoa(int(t))
}

// ReadModelIO reads the graph inputs and outputs of the ONNX model at path
// without loading its weights: the protobuf is walked field by field and
// everything else is skipped.
func ReadModelIO(path string) (ModelIO, error) {
	f, err := os.Open(path)
	if err != nil {
		return ModelIO{}, fmt.Errorf("read ONNX model: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ModelIO{}, fmt.Errorf("read ONNX model: %w", err)
	}
	mio, err := readModelIO(f, st.Size())
	if err != nil {
		return ModelIO{}, fmt.Errorf("read ONNX model %s: %w", path, err)
	}
	return mio, nil
}

// Field numbers of onnx.proto used here.
const (
	pbModelGraph          = 7  // ModelProto.graph
	pbGraphInitializer    = 5  // GraphProto.initializer
	pbGraphInput          = 11 // GraphProto.input
	pbGraphOutput         = 12 // GraphProto.output
	pbGraphSparseInit     = 15 // GraphProto.sparse_initializer
	pbSparseValues        = 1  // SparseTensorProto.values
	pbTensorName          = 8  // TensorProto.name
	pbValueInfoName       = 1  // ValueInfoProto.name
	pbValueInfoType       = 2  // ValueInfoProto.type
	pbTypeTensor          = 1  // TypeProto.tensor_type
	pbTensorTypeElem      = 1  // TypeProto.Tensor.elem_type
	pbTensorTypeShape     = 2  // TypeProto.Tensor.shape
	pbShapeDim            = 1  // TensorShapeProto.dim
	pbDimValue            = 1  // TensorShapeProto.Dimension.dim_value
	pbDimParam            = 2  // TensorShapeProto.Dimension.dim_param
	pbMaxValueInfo        = 1 << 20
	pbMaxName             = 1 << 16
	pbMaxDims             = 64
	pbWireVarint          = 0
	pbWireFixed64         = 1
	pbWireBytes           = 2
	pbWireFixed32         = 5
	pbMaxValueInfoEntries = 4096
)

var errTruncated = errors.New("truncated protobuf")

// pbReader walks the fields of one protobuf message held in r between off
// and end.
type pbReader struct {
	r        io.ReaderAt
	off, end int64
}

// varint reads a base-128 varint at the reader's offset.
func (p *pbReader) varint() (uint64, error) {
	var buf [10]byte
	n := int64(len(buf))
	if rem := p.end - p.off; rem < n {
		n = rem
	}
	if n <= 0 {
		return 0, errTruncated
	}
	got, err := p.r.ReadAt(buf[:n], p.off)
	if int64(got) < n {
		if err == nil || err == io.EOF {
			err = errTruncated
		}
		return 0, err
	}
	var v uint64
	for i := 0; i < int(n); i++ {
		b := buf[i]
		if i == 9 && b > 1 {
			return 0, errors.New("protobuf varint overflows 64 bits")
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			p.off += int64(i + 1)
			return v, nil
		}
	}
	return 0, errTruncated
}

// next reads a field's tag; ok is false at the end of the message.
func (p *pbReader) next() (field int, wire int, ok bool, err error) {
	if p.off >= p.end {
		return 0, 0, false, nil
	}
	tag, err := p.varint()
	if err != nil {
		return 0, 0, false, err
	}
	field, wire = int(tag>>3), int(tag&7)
	if field == 0 || tag>>3 > 1<<29 {
		return 0, 0, false, fmt.Errorf("bad protobuf field number %d", tag>>3)
	}
	return field, wire, true, nil
}

// sub returns a reader over the length-delimited field at the offset and
// moves past it.
func (p *pbReader) sub() (pbReader, error) {
	n, err := p.varint()
	if err != nil {
		return pbReader{}, err
	}
	if n > uint64(p.end-p.off) {
		return pbReader{}, errTruncated
	}
	s := pbReader{r: p.r, off: p.off, end: p.off + int64(n)}
	p.off = s.end
	return s, nil
}

// bytes reads a length-delimited field of at most limit bytes.
func (p *pbReader) bytes(limit int) ([]byte, error) {
	s, err := p.sub()
	if err != nil {
		return nil, err
	}
	n := s.end - s.off
	if n > int64(limit) {
		return nil, fmt.Errorf("protobuf field of %d bytes is over the %d-byte limit", n, limit)
	}
	buf := make([]byte, n)
	if _, err := p.r.ReadAt(buf, s.off); err != nil && !(err == io.EOF && n == 0) {
		if err == io.EOF {
			err = errTruncated
		}
		return nil, err
	}
	return buf, nil
}

// skip moves past a field of the given wire type.
func (p *pbReader) skip(wire int) error {
	switch wire {
	case pbWireVarint:
		_, err := p.varint()
		return err
	case pbWireFixed64:
		p.off += 8
	case pbWireBytes:
		_, err := p.sub()
		return err
	case pbWireFixed32:
		p.off += 4
	default:
		return fmt.Errorf("unsupported protobuf wire type %d", wire)
	}
	if p.off > p.end {
		return errTruncated
	}
	return nil
}

func readModelIO(r io.ReaderAt, size int64) (ModelIO, error) {
	top := pbReader{r: r, end: size}
	var graph *pbReader
	for {
		field, wire, ok, err := top.next()
		if err != nil {
			return ModelIO{}, fmt.Errorf("model: %w", err)
		}
		if !ok {
			break
		}
		if field == pbModelGraph && wire == pbWireBytes {
			g, err := top.sub()
			if err != nil {
				return ModelIO{}, fmt.Errorf("model graph: %w", err)
			}
			graph = &g
			continue
		}
		if err := top.skip(wire); err != nil {
			return ModelIO{}, fmt.Errorf("model field %d: %w", field, err)
		}
	}
	if graph == nil {
		return ModelIO{}, errors.New("no graph: not an ONNX model")
	}
	var mio ModelIO
	initializers := map[string]bool{}
	for {
		field, wire, ok, err := graph.next()
		if err != nil {
			return ModelIO{}, fmt.Errorf("graph: %w", err)
		}
		if !ok {
			break
		}
		if wire != pbWireBytes {
			if err := graph.skip(wire); err != nil {
				return ModelIO{}, fmt.Errorf("graph field %d: %w", field, err)
			}
			continue
		}
		switch field {
		case pbGraphInput, pbGraphOutput:
			s, err := graph.sub()
			if err != nil {
				return ModelIO{}, fmt.Errorf("graph value info: %w", err)
			}
			if s.end-s.off > pbMaxValueInfo {
				return ModelIO{}, fmt.Errorf("graph value info of %d bytes is too large", s.end-s.off)
			}
			if len(mio.Inputs)+len(mio.Outputs) >= pbMaxValueInfoEntries {
				return ModelIO{}, fmt.Errorf("graph lists more than %d inputs and outputs", pbMaxValueInfoEntries)
			}
			v, err := readValueInfo(&s)
			if err != nil {
				return ModelIO{}, fmt.Errorf("graph value info: %w", err)
			}
			if field == pbGraphInput {
				mio.Inputs = append(mio.Inputs, v)
			} else {
				mio.Outputs = append(mio.Outputs, v)
			}
		case pbGraphInitializer:
			s, err := graph.sub()
			if err != nil {
				return ModelIO{}, fmt.Errorf("graph initializer: %w", err)
			}
			name, err := readTensorName(&s)
			if err != nil {
				return ModelIO{}, fmt.Errorf("graph initializer: %w", err)
			}
			initializers[name] = true
		case pbGraphSparseInit:
			s, err := graph.sub()
			if err != nil {
				return ModelIO{}, fmt.Errorf("graph sparse initializer: %w", err)
			}
			name, err := readSparseName(&s)
			if err != nil {
				return ModelIO{}, fmt.Errorf("graph sparse initializer: %w", err)
			}
			initializers[name] = true
		default:
			if err := graph.skip(wire); err != nil {
				return ModelIO{}, fmt.Errorf("graph field %d: %w", field, err)
			}
		}
	}
	inputs := mio.Inputs[:0]
	for _, v := range mio.Inputs {
		if !initializers[v.Name] {
			inputs = append(inputs, v)
		}
	}
	mio.Inputs = inputs
	return mio, nil
}

func readTensorName(p *pbReader) (string, error) {
	name := ""
	for {
		field, wire, ok, err := p.next()
		if err != nil || !ok {
			return name, err
		}
		if field == pbTensorName && wire == pbWireBytes {
			b, err := p.bytes(pbMaxName)
			if err != nil {
				return "", err
			}
			name = string(b)
			continue
		}
		if err := p.skip(wire); err != nil {
			return "", err
		}
	}
}

func readSparseName(p *pbReader) (string, error) {
	name := ""
	for {
		field, wire, ok, err := p.next()
		if err != nil || !ok {
			return name, err
		}
		if field == pbSparseValues && wire == pbWireBytes {
			s, err := p.sub()
			if err != nil {
				return "", err
			}
			if name, err = readTensorName(&s); err != nil {
				return "", err
			}
			continue
		}
		if err := p.skip(wire); err != nil {
			return "", err
		}
	}
}

func readValueInfo(p *pbReader) (ValueInfo, error) {
	var v ValueInfo
	for {
		field, wire, ok, err := p.next()
		if err != nil {
			return v, err
		}
		if !ok {
			return v, nil
		}
		switch {
		case field == pbValueInfoName && wire == pbWireBytes:
			b, err := p.bytes(pbMaxName)
			if err != nil {
				return v, err
			}
			v.Name = string(b)
		case field == pbValueInfoType && wire == pbWireBytes:
			s, err := p.sub()
			if err != nil {
				return v, err
			}
			if err := readType(&s, &v); err != nil {
				return v, fmt.Errorf("%q: %w", v.Name, err)
			}
		default:
			if err := p.skip(wire); err != nil {
				return v, err
			}
		}
	}
}

func readType(p *pbReader, v *ValueInfo) error {
	for {
		field, wire, ok, err := p.next()
		if err != nil || !ok {
			return err
		}
		if field != pbTypeTensor || wire != pbWireBytes {
			if err := p.skip(wire); err != nil {
				return err
			}
			continue
		}
		t, err := p.sub()
		if err != nil {
			return err
		}
		for {
			field, wire, ok, err := t.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			switch {
			case field == pbTensorTypeElem && wire == pbWireVarint:
				e, err := t.varint()
				if err != nil {
					return err
				}
				v.Type = ElemType(int32(e))
			case field == pbTensorTypeShape && wire == pbWireBytes:
				s, err := t.sub()
				if err != nil {
					return err
				}
				if err := readShape(&s, v); err != nil {
					return err
				}
			default:
				if err := t.skip(wire); err != nil {
					return err
				}
			}
		}
	}
}

func readShape(p *pbReader, v *ValueInfo) error {
	v.Dims = []Dim{}
	for {
		field, wire, ok, err := p.next()
		if err != nil || !ok {
			return err
		}
		if field != pbShapeDim || wire != pbWireBytes {
			if err := p.skip(wire); err != nil {
				return err
			}
			continue
		}
		if len(v.Dims) >= pbMaxDims {
			return fmt.Errorf("shape has more than %d dimensions", pbMaxDims)
		}
		s, err := p.sub()
		if err != nil {
			return err
		}
		var d Dim
		for {
			field, wire, ok, err := s.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			switch {
			case field == pbDimValue && wire == pbWireVarint:
				x, err := s.varint()
				if err != nil {
					return err
				}
				if n := int64(x); n > 0 {
					d.Value = n
				}
			case field == pbDimParam && wire == pbWireBytes:
				b, err := s.bytes(pbMaxName)
				if err != nil {
					return err
				}
				d.Param = string(b)
			default:
				if err := s.skip(wire); err != nil {
					return err
				}
			}
		}
		v.Dims = append(v.Dims, d)
	}
}

// Check compares the model's inputs and outputs with the manifest and
// refuses a model that breaks it: a missing or extra input, a missing
// output, an element type other than float32, a wrong rank, channel count,
// batch size or fixed size. Each problem is one line naming both sides:
//
//	model "x": manifest says input "input" is NCHW float32 [?,3,?,?], model.onnx has int64 [1,3,224,224]
func (m *Manifest) Check(mio ModelIO) error {
	var problems []string
	file := m.File
	say := func(what, want string, got ValueInfo) {
		problems = append(problems, fmt.Sprintf("model %q: manifest says %s is %s, %s has %s", m.Name, what, want, file, got))
	}

	in := m.Input
	var model *ValueInfo
	var others []string
	for i := range mio.Inputs {
		if mio.Inputs[i].Name == in.Name {
			model = &mio.Inputs[i]
		} else {
			others = append(others, fmt.Sprintf("%q (%s)", mio.Inputs[i].Name, mio.Inputs[i]))
		}
	}
	wantIn := m.inputDims()
	wantInText := fmt.Sprintf("%s float32 %s", in.Layout, dimsString(wantIn))
	if model == nil {
		problems = append(problems, fmt.Sprintf("model %q: manifest says input %q (%s), %s has inputs %s", m.Name, in.Name, wantInText, file, listOrNone(others)))
	} else {
		if len(others) > 0 {
			problems = append(problems, fmt.Sprintf("model %q: manifest says the one input is %q, %s also needs %s", m.Name, in.Name, file, strings.Join(others, ", ")))
		}
		if model.Type != ElemFloat32 || !dimsMatch(model.Dims, wantIn) {
			say(fmt.Sprintf("input %q", in.Name), wantInText, *model)
		}
	}

	out := m.Output
	var outModel *ValueInfo
	var outNames []string
	for i := range mio.Outputs {
		if mio.Outputs[i].Name == out.Name {
			outModel = &mio.Outputs[i]
		}
		outNames = append(outNames, fmt.Sprintf("%q (%s)", mio.Outputs[i].Name, mio.Outputs[i]))
	}
	if outModel == nil {
		problems = append(problems, fmt.Sprintf("model %q: manifest says output %q, %s has outputs %s", m.Name, out.Name, file, listOrNone(outNames)))
	} else if want, ok := m.outputMatches(*outModel); !ok || outModel.Type != ElemFloat32 {
		say(fmt.Sprintf("output %q", out.Name), want, *outModel)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// inputDims is the input shape the manifest promises; unknown sizes are
// left as zero Dims.
func (m *Manifest) inputDims() []Dim {
	in := m.Input
	batch := Dim{Value: int64(in.Batch)}
	h, w := Dim{Value: int64(in.Height)}, Dim{Value: int64(in.Width)}
	if in.Layout == NHWC {
		return []Dim{batch, h, w, {Value: 3}}
	}
	return []Dim{batch, {Value: 3}, h, w}
}

// dimsMatch reports whether a model shape fits the manifest's: same rank,
// equal sizes where both are fixed, and a dynamic model size wherever the
// manifest's is dynamic (flowwatch sends sizes the model must accept).
func dimsMatch(model, want []Dim) bool {
	if len(model) != len(want) {
		return false
	}
	for i := range want {
		switch {
		case want[i].Fixed() && model[i].Fixed() && want[i].Value != model[i].Value:
			return false
		case !want[i].Fixed() && model[i].Fixed():
			return false
		}
	}
	return true
}

// outputMatches checks the output's shape against the task, returning the
// shape the manifest implies for the message.
func (m *Manifest) outputMatches(v ValueInfo) (string, bool) {
	out := m.Output
	in := m.Input
	batch := Dim{Value: int64(in.Batch)}
	var gridH, gridW Dim
	if in.Width > 0 && m.Task == TaskDensity {
		gridH, gridW = Dim{Value: int64(in.Height / out.Stride)}, Dim{Value: int64(in.Width / out.Stride)}
	}
	switch m.Task {
	case TaskDensity:
		nchw := []Dim{batch, {Value: 1}, gridH, gridW}
		nhwc := []Dim{batch, gridH, gridW, {Value: 1}}
		nhw := []Dim{batch, gridH, gridW}
		want := fmt.Sprintf("a float32 density map %s, %s or %s", dimsString(nchw), dimsString(nhwc), dimsString(nhw))
		if v.Dims == nil {
			return want, true
		}
		return want, outDimsMatch(v.Dims, nchw) || outDimsMatch(v.Dims, nhwc) || outDimsMatch(v.Dims, nhw)
	default:
		per := out.PersonClass + 1
		var want string
		var ok bool
		if out.Format == YOLOv8 {
			want = fmt.Sprintf("float32 [%s,4+classes,anchors] with at least %d classes", batch, per)
			ok = len(v.Dims) == 3 && (!v.Dims[1].Fixed() || v.Dims[1].Value >= int64(4+per))
		} else {
			want = fmt.Sprintf("float32 [%s,anchors,5+classes] with at least %d classes", batch, per)
			ok = len(v.Dims) == 3 && (!v.Dims[2].Fixed() || v.Dims[2].Value >= int64(5+per))
		}
		if ok && batch.Fixed() && v.Dims[0].Fixed() && v.Dims[0].Value != batch.Value {
			ok = false
		}
		return want, ok || v.Dims == nil
	}
}

// outDimsMatch is dimsMatch for outputs, whose sizes flowwatch reads
// rather than chooses: a fixed model size may stand where the manifest
// leaves one open.
func outDimsMatch(model, want []Dim) bool {
	if len(model) != len(want) {
		return false
	}
	for i := range want {
		if want[i].Fixed() && model[i].Fixed() && want[i].Value != model[i].Value {
			return false
		}
	}
	return true
}
