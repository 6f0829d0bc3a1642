package envelope

// MaxDepth bounds the nesting of decoded msgpack documents. JSON documents
// have their own bound, MaxJSONDepth.
const MaxDepth = 512

// MaxJSONDepth bounds the nesting of JSON documents, decoded or encoded.
// Python's json gives up with RecursionError near 990 levels (less inside a
// deep call stack), so 1000 refuses nothing a Python peer can write or read,
// and a cycle in a value being encoded fails instead of recursing forever.
const MaxJSONDepth = 1000

// maxIntDigits is CPython's sys.int_info.default_max_str_digits: int <-> str
// conversions of longer numbers raise ValueError, both in json.loads and in
// json.dumps.
const maxIntDigits = 4300
