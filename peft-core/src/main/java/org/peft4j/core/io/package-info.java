/**
 * Files: safetensors, Hugging Face checkpoint folders, ONNX tensors, JSON configs, atomic writes.
 *
 * <ul>
 *   <li>{@link org.peft4j.core.io.SafeTensorsFile} — lazy, memory-mapped reader of one
 *       {@code .safetensors} file: {@code open(path)}, {@code keys()}, {@code info(key)},
 *       {@code metadata()}, {@code get(key[, widenToFloat])}, {@code getBytes(key)}. Validates
 *       like the reference implementation (huggingface/safetensors).</li>
 *   <li>{@link org.peft4j.core.io.SafeTensors} — {@code load(path)} (everything, copied into ND4J
 *       memory) and {@code write(path, tensors, metadata)} (atomic, reference byte layout).</li>
 *   <li>{@link org.peft4j.core.io.HfFolder} — {@code config.json} and {@code model.safetensors} /
 *       sharded {@code model.safetensors.index.json} of a checkpoint folder;
 *       {@link org.peft4j.core.io.CheckpointWeights} reads such weights one tensor at a time.</li>
 *   <li>{@link org.peft4j.core.io.JsonFiles} — JSON read with file-naming errors, and written the
 *       way transformers/PEFT write it (sorted keys, indent 2).</li>
 *   <li>{@link org.peft4j.core.io.AtomicFiles} — temp-file-and-rename writes of files and folders.</li>
 *   <li>{@link org.peft4j.core.io.OnnxReader} — ONNX protobuf parsing and its tensors as ND4J
 *       arrays; naming a graph's initializers is a model family's job
 *       ({@code model.bert.BertOnnxImport}), since this package knows no model.</li>
 * </ul>
 *
 * <p>Format problems throw {@link org.peft4j.core.io.SafeTensorsException} or
 * {@link org.peft4j.core.io.CheckpointException} (both {@code IllegalArgumentException}s whose
 * message names the file and key); operating-system I/O failures throw {@code IOException}
 * ({@code UncheckedIOException} from the per-tensor getters).
 */
package org.peft4j.core.io;
