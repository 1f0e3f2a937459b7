package org.peft4j.core.io;

import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pickle interpreter that can build exactly what {@code torch.save(state_dict)} writes and
 * nothing else: Python's own unpickler imports and calls whatever the stream names, which is how a
 * downloaded checkpoint runs code. Here every global is checked against a fixed list at the
 * {@code GLOBAL} opcode, before anything could be called, and every opcode outside the
 * protocol-2..4 subset torch uses is refused by name.
 *
 * <p>Values: Python {@code str} → {@link String}, {@code int} → {@link Long}, {@code float} →
 * {@link Double}, {@code bool} → {@link Boolean}, {@code None} → {@link #NONE}, tuples →
 * {@link Tuple}, lists → {@link ArrayList}, dicts and {@code OrderedDict} → {@link LinkedHashMap},
 * a tensor → {@link TensorRef}. The interpreter never recurses, every length is checked against
 * the bytes left before anything is allocated, and dict keys must be scalars (a list that
 * contains itself must never be hashed).
 */
final class RestrictedUnpickler {
    /** Python's None (collections here may not hold Java null in all places). */
    static final Object NONE = new Object() {
        @Override
        public String toString() {
            return "None";
        }
    };
    private static final Object MARK = new Object();

    /** A Python tuple. */
    record Tuple(List<Object> items) {
    }

    /** An allowed global, as pushed by {@code GLOBAL} / {@code STACK_GLOBAL}. */
    record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }
    }

    /** {@code ('storage', torch.FloatStorage, key, location, numel)}: one raw storage in the zip. */
    record StorageRef(SafeTensorsDtype dtype, String key, long numel) {
    }

    /** What {@code torch._utils._rebuild_tensor_v2} builds: a strided view of one storage. */
    record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride) {
    }

    /** The storage classes torch names in persistent ids, and the dtype of each. */
    static final Map<String, SafeTensorsDtype> STORAGE_TYPES = Map.ofEntries(
            Map.entry("FloatStorage", SafeTensorsDtype.F32),
            Map.entry("HalfStorage", SafeTensorsDtype.F16),
            Map.entry("BFloat16Storage", SafeTensorsDtype.BF16),
            Map.entry("DoubleStorage", SafeTensorsDtype.F64),
            Map.entry("LongStorage", SafeTensorsDtype.I64),
            Map.entry("IntStorage", SafeTensorsDtype.I32),
            Map.entry("ShortStorage", SafeTensorsDtype.I16),
            Map.entry("CharStorage", SafeTensorsDtype.I8),
            Map.entry("ByteStorage", SafeTensorsDtype.U8),
            Map.entry("BoolStorage", SafeTensorsDtype.BOOL));

    private static final String ALLOWED = "collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
            + "torch._utils._rebuild_parameter, torch._utils._rebuild_parameter_with_state, torch.<Type>Storage";

    private final Path file;
    private final byte[] data;
    private int pos;
    private final List<Object> stack = new ArrayList<>();
    /** Positions in {@link #stack} where a MARK was pushed (kept apart, like CPython's metastack). */
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private RestrictedUnpickler(Path file, byte[] data) {
        this.file = file;
        this.data = data;
    }

    /** Runs the pickle {@code data} (named {@code file} in errors) and returns its one value. */
    static Object load(Path file, byte[] data) {
        return new RestrictedUnpickler(file, data).run();
    }

    private TorchBinException refuse(String problem) {
        return new TorchBinException(file, null, "pickle " + problem + " (at byte " + pos + " of data.pkl)");
    }

    private Object run() {
        while (true) {
            if (pos >= data.length) {
                throw refuse("ends without a STOP opcode (truncated?)");
            }
            int op = data[pos++] & 0xff;
            switch (op) {
                case 0x80 -> { // PROTO
                    int proto = u8();
                    if (proto < 2 || proto > 5) {
                        throw refuse("protocol " + proto + " is not supported (torch.save writes 2)");
                    }
                }
                case 0x95 -> skip(8); // FRAME: an 8-byte length hint, no semantics
                case '.' -> { // STOP
                    Object v = pop();
                    if (!stack.isEmpty() || !marks.isEmpty()) {
                        throw refuse("leaves " + stack.size() + " values on the stack at STOP");
                    }
                    return v;
                }
                case '(' -> marks.add(stack.size()); // MARK
                case '0' -> pop(); // POP
                case '2' -> push(peek()); // DUP
                case '1' -> popMark(); // POP_MARK
                case 'N' -> push(NONE);
                case 0x88 -> push(Boolean.TRUE); // NEWTRUE
                case 0x89 -> push(Boolean.FALSE); // NEWFALSE
                case 'K' -> push((long) u8()); // BININT1
                case 'M' -> push((long) u16()); // BININT2
                case 'J' -> push((long) s32()); // BININT
                case 0x8a -> push(long1(u8())); // LONG1
                case 'G' -> push(Double.longBitsToDouble(s64be())); // BINFLOAT (big-endian)
                case 'X' -> push(utf8(u32())); // BINUNICODE
                case 0x8c -> push(utf8(u8())); // SHORT_BINUNICODE
                case 0x8d -> push(utf8(u64())); // BINUNICODE8
                case 'C' -> push(bytes(u8())); // SHORT_BINBYTES
                case 'B' -> push(bytes(u32())); // BINBYTES
                case 'U' -> push(latin1(u8())); // SHORT_BINSTRING (py2 str)
                case 'T' -> push(latin1(u32())); // BINSTRING
                case ')' -> push(new Tuple(List.of()));
                case 0x85 -> push(tuple(1)); // TUPLE1
                case 0x86 -> push(tuple(2)); // TUPLE2
                case 0x87 -> push(tuple(3)); // TUPLE3
                case 't' -> push(new Tuple(listOf(popMark()))); // TUPLE
                case ']' -> push(new ArrayList<>()); // EMPTY_LIST
                case 'l' -> push(new ArrayList<>(popMark())); // LIST
                case '}' -> push(new LinkedHashMap<>()); // EMPTY_DICT
                case 'd' -> { // DICT
                    List<Object> items = popMark();
                    Map<Object, Object> m = new LinkedHashMap<>();
                    setItems(m, items);
                    push(m);
                }
                case 'a' -> { // APPEND
                    Object v = pop();
                    list(peek(), "APPEND").add(v);
                }
                case 'e' -> { // APPENDS
                    List<Object> items = popMark();
                    list(peek(), "APPENDS").addAll(items);
                }
                case 's' -> { // SETITEM
                    Object v = pop();
                    Object k = pop();
                    setItems(dict(peek(), "SETITEM"), List.of(k, v));
                }
                case 'u' -> { // SETITEMS
                    List<Object> items = popMark();
                    setItems(dict(peek(), "SETITEMS"), items);
                }
                case 'q' -> memo.put((long) u8(), peek()); // BINPUT
                case 'r' -> memo.put(u32(), peek()); // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), peek()); // MEMOIZE
                case 'h' -> push(memoGet(u8())); // BINGET
                case 'j' -> push(memoGet(u32())); // LONG_BINGET
                case 'c' -> push(global(line(), line())); // GLOBAL
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw refuse("STACK_GLOBAL needs two strings, got " + typeName(module) + " and " + typeName(name));
                    }
                    push(global(m, n));
                }
                case 'Q' -> push(persistentId(pop())); // BINPERSID
                case 'R' -> { // REDUCE
                    Object args = pop();
                    Object callable = pop();
                    push(reduce(callable, args));
                }
                case 'b' -> { // BUILD: sets attributes; only OrderedDict's _metadata is expected
                    Object state = pop();
                    Object target = peek();
                    if (!(target instanceof Map) || !(state instanceof Map || state == NONE)) {
                        throw refuse("BUILD of " + typeName(target) + " with " + typeName(state)
                                + " (only an OrderedDict's attributes are accepted)");
                    }
                }
                default -> throw refuse("opcode " + opcodeName(op) + " is not allowed in a tensor state dict");
            }
        }
    }

    private Object global(String module, String name) {
        String q = module + "." + name;
        boolean ok = q.equals("collections.OrderedDict")
                || q.equals("torch._utils._rebuild_tensor_v2")
                || q.equals("torch._utils._rebuild_parameter")
                || q.equals("torch._utils._rebuild_parameter_with_state")
                || module.equals("torch") && STORAGE_TYPES.containsKey(name);
        if (!ok) {
            throw refuse("refers to global '" + printable(q) + "', which is not allowed (a pickle that names it"
                    + " could run code when loaded in Python; allowed: " + ALLOWED + ")");
        }
        return new Global(module, name);
    }

    private StorageRef persistentId(Object pid) {
        if (!(pid instanceof Tuple t) || t.items().size() != 5 || !"storage".equals(t.items().get(0))) {
            throw refuse("persistent id must be ('storage', type, key, location, numel), got " + typeName(pid));
        }
        List<Object> it = t.items();
        if (!(it.get(1) instanceof Global g) || !g.module().equals("torch") || !STORAGE_TYPES.containsKey(g.name())) {
            throw refuse("persistent id names storage type " + typeName(it.get(1)) + " (known: torch."
                    + String.join(", torch.", new java.util.TreeSet<>(STORAGE_TYPES.keySet())) + ")");
        }
        if (!(it.get(2) instanceof String key) || key.isEmpty() || key.contains("/") || key.contains("\\")
                || key.contains("..")) {
            throw refuse("persistent id has storage key " + typeName(it.get(2)) + " (a plain name is expected)");
        }
        if (!(it.get(4) instanceof Long numel) || numel < 0) {
            throw refuse("storage '" + key + "' has element count " + typeName(it.get(4)));
        }
        return new StorageRef(STORAGE_TYPES.get(g.name()), key, numel);
    }

    private Object reduce(Object callable, Object args) {
        if (!(callable instanceof Global g)) {
            throw refuse("REDUCE calls " + typeName(callable) + ", not an allowed global");
        }
        if (!(args instanceof Tuple t)) {
            throw refuse("REDUCE of " + g.qualified() + " with arguments " + typeName(args) + " (a tuple is expected)");
        }
        List<Object> a = t.items();
        switch (g.qualified()) {
            case "collections.OrderedDict" -> {
                Map<Object, Object> m = new LinkedHashMap<>();
                if (a.size() == 1 && a.get(0) instanceof List<?> pairs) {
                    for (Object p : pairs) {
                        if (!(p instanceof Tuple kv) || kv.items().size() != 2) {
                            throw refuse("OrderedDict item " + typeName(p) + " (a (key, value) tuple is expected)");
                        }
                        setItems(m, kv.items());
                    }
                } else if (!a.isEmpty()) {
                    throw refuse("OrderedDict called with " + a.size() + " arguments");
                }
                return m;
            }
            case "torch._utils._rebuild_tensor_v2" -> {
                if (a.size() < 6 || a.size() > 7) {
                    throw refuse("_rebuild_tensor_v2 takes 6 or 7 arguments, got " + a.size());
                }
                if (!(a.get(0) instanceof StorageRef s)) {
                    throw refuse("_rebuild_tensor_v2's storage is " + typeName(a.get(0)));
                }
                if (!(a.get(1) instanceof Long offset) || offset < 0) {
                    throw refuse("_rebuild_tensor_v2's storage offset is " + typeName(a.get(1)));
                }
                long[] shape = longs(a.get(2), "size");
                long[] stride = longs(a.get(3), "stride");
                if (shape.length != stride.length) {
                    throw refuse("_rebuild_tensor_v2 has " + shape.length + " sizes but " + stride.length + " strides");
                }
                return new TensorRef(s, offset, shape, stride);
            }
            case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state" -> {
                if (a.size() < 3 || !(a.get(0) instanceof TensorRef tensor)) {
                    throw refuse(g.name() + " needs a tensor as first of 3+ arguments, got "
                            + (a.isEmpty() ? "none" : typeName(a.get(0))));
                }
                return tensor;
            }
            default -> throw refuse("REDUCE calls " + g.qualified() + ", which is not callable here");
        }
    }

    private long[] longs(Object o, String what) {
        if (!(o instanceof Tuple t)) {
            throw refuse("_rebuild_tensor_v2's " + what + " is " + typeName(o) + " (a tuple of ints is expected)");
        }
        long[] out = new long[t.items().size()];
        for (int i = 0; i < out.length; i++) {
            if (!(t.items().get(i) instanceof Long v) || v < 0) {
                throw refuse("_rebuild_tensor_v2's " + what + "[" + i + "] is " + typeName(t.items().get(i))
                        + " (a non-negative int is expected)");
            }
            out[i] = v;
        }
        return out;
    }

    private void setItems(Map<Object, Object> m, List<Object> kv) {
        if (kv.size() % 2 != 0) {
            throw refuse("SETITEMS with an odd number (" + kv.size() + ") of keys and values");
        }
        for (int i = 0; i < kv.size(); i += 2) {
            Object k = kv.get(i);
            // Only scalars are hashed: a container may contain itself, and hashing it would never end.
            if (!(k instanceof String || k instanceof Long || k instanceof Boolean || k instanceof Double || k == NONE)) {
                throw refuse("dict key of type " + typeName(k) + " (a string or number is expected)");
            }
            m.put(k, kv.get(i + 1));
        }
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o, String op) {
        if (!(o instanceof ArrayList<?>)) {
            throw refuse(op + " on " + typeName(o) + " (a list is expected)");
        }
        return (List<Object>) o;
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(Object o, String op) {
        if (!(o instanceof Map<?, ?>)) {
            throw refuse(op + " on " + typeName(o) + " (a dict is expected)");
        }
        return (Map<Object, Object>) o;
    }

    private Tuple tuple(int n) {
        if (stack.size() - lastMark() < n) {
            throw refuse("TUPLE" + n + " on a stack of " + (stack.size() - lastMark()) + " values");
        }
        List<Object> items = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
        stack.subList(stack.size() - n, stack.size()).clear();
        return new Tuple(items);
    }

    private static List<Object> listOf(List<Object> items) {
        return java.util.Collections.unmodifiableList(items);
    }

    private int lastMark() {
        return marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) {
            throw refuse("pops to a MARK that was never pushed");
        }
        int m = marks.remove(marks.size() - 1);
        List<Object> items = new ArrayList<>(stack.subList(m, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private void push(Object o) {
        stack.add(o);
    }

    private Object pop() {
        if (stack.size() <= lastMark()) {
            throw refuse("pops an empty stack");
        }
        return stack.remove(stack.size() - 1);
    }

    private Object peek() {
        if (stack.size() <= lastMark()) {
            throw refuse("reads the top of an empty stack");
        }
        return stack.get(stack.size() - 1);
    }

    private Object memoGet(long i) {
        Object v = memo.get(i);
        if (v == null) {
            throw refuse("reads memo entry " + i + " which was never stored");
        }
        return v;
    }

    private void need(long n) {
        if (n < 0 || n > data.length - pos) {
            throw refuse("claims " + (n < 0 ? Long.toUnsignedString(n) : Long.toString(n)) + " bytes but only "
                    + (data.length - pos) + " remain");
        }
    }

    private void skip(int n) {
        need(n);
        pos += n;
    }

    private int u8() {
        need(1);
        return data[pos++] & 0xff;
    }

    private int u16() {
        need(2);
        int v = (data[pos] & 0xff) | (data[pos + 1] & 0xff) << 8;
        pos += 2;
        return v;
    }

    private int s32() {
        need(4);
        int v = (data[pos] & 0xff) | (data[pos + 1] & 0xff) << 8 | (data[pos + 2] & 0xff) << 16 | data[pos + 3] << 24;
        pos += 4;
        return v;
    }

    private long u32() {
        return s32() & 0xffffffffL;
    }

    private long u64() {
        need(8);
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | (data[pos + i] & 0xff);
        }
        pos += 8;
        return v;
    }

    private long s64be() {
        need(8);
        long v = 0;
        for (int i = 0; i < 8; i++) {
            v = v << 8 | (data[pos + i] & 0xff);
        }
        pos += 8;
        return v;
    }

    /** LONG1: a little-endian two's-complement integer of {@code n} bytes; at most 8 fit a long. */
    private Long long1(int n) {
        if (n > 8) {
            throw refuse("integer of " + n + " bytes does not fit 64 bits");
        }
        need(n);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) {
            v = v << 8 | (data[pos + i] & 0xff);
        }
        if (n > 0 && n < 8 && (data[pos + n - 1] & 0x80) != 0) {
            v |= -1L << (8 * n); // sign-extend
        }
        pos += n;
        return v;
    }

    private String utf8(long n) {
        need(n);
        try {
            String s = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(data, pos, (int) n)).toString();
            pos += (int) n;
            return s;
        } catch (CharacterCodingException e) {
            throw refuse("string is not valid UTF-8");
        }
    }

    private String latin1(long n) {
        need(n);
        String s = new String(data, pos, (int) n, StandardCharsets.ISO_8859_1);
        pos += (int) n;
        return s;
    }

    private byte[] bytes(long n) {
        need(n);
        byte[] b = java.util.Arrays.copyOfRange(data, pos, pos + (int) n);
        pos += (int) n;
        return b;
    }

    /** A newline-terminated ASCII line (GLOBAL's module and name). */
    private String line() {
        int start = pos;
        int limit = Math.min(data.length, pos + 256);
        while (pos < limit && data[pos] != '\n') {
            pos++;
        }
        if (pos >= limit) {
            throw refuse("GLOBAL name is not terminated by a newline within 256 bytes");
        }
        String s = new String(data, start, pos - start, StandardCharsets.ISO_8859_1);
        pos++;
        return s;
    }

    private static String printable(String s) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < s.length() && i < 120; i++) {
            char c = s.charAt(i);
            sb.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        return sb.toString();
    }

    /** A short description of a value for messages; never prints a container (it may contain itself). */
    static String typeName(Object o) {
        if (o == null || o == NONE) {
            return "None";
        }
        if (o instanceof String s) {
            return "'" + printable(s) + "'";
        }
        if (o instanceof Long || o instanceof Boolean || o instanceof Double) {
            return o.toString();
        }
        if (o instanceof Global g) {
            return printable(g.qualified());
        }
        if (o instanceof Tuple t) {
            return "a tuple of " + t.items().size();
        }
        if (o instanceof List<?> l) {
            return "a list of " + l.size();
        }
        if (o instanceof Map<?, ?> m) {
            return "a dict of " + m.size();
        }
        if (o instanceof byte[] b) {
            return b.length + " bytes";
        }
        if (o instanceof TensorRef) {
            return "a tensor";
        }
        if (o instanceof StorageRef) {
            return "a storage";
        }
        return o.getClass().getSimpleName();
    }

    private static String opcodeName(int op) {
        String name = switch (op) {
            case 'i' -> "INST";
            case 'o' -> "OBJ";
            case 0x81 -> "NEWOBJ";
            case 0x92 -> "NEWOBJ_EX";
            case 0x82 -> "EXT1";
            case 0x83 -> "EXT2";
            case 0x84 -> "EXT4";
            case 'P' -> "PERSID";
            case 'I' -> "INT";
            case 'L' -> "LONG";
            case 'F' -> "FLOAT";
            case 'S' -> "STRING";
            case 'V' -> "UNICODE";
            case 'g' -> "GET";
            case 'p' -> "PUT";
            case 0x8b -> "LONG4";
            case 0x8e -> "BINBYTES8";
            case 0x8f -> "EMPTY_SET";
            case 0x90 -> "ADDITEMS";
            case 0x91 -> "FROZENSET";
            case 0x96 -> "BYTEARRAY8";
            case 0x97 -> "NEXT_BUFFER";
            case 0x98 -> "READONLY_BUFFER";
            default -> null;
        };
        return (name == null ? "" : name + " ") + String.format("(0x%02x)", op);
    }
}
