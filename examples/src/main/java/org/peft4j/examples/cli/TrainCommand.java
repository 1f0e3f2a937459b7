package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.io.AtomicFiles;
import org.peft4j.core.io.JsonFiles;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * {@code peft4j train CONFIG.yaml}: the fine-tuning run a YAML recipe describes
 * ({@link TrainRecipe}), trained by the recipe's task ({@link TrainTask}). Writes
 * {@code <output_dir>/adapter/} (a PEFT adapter folder), {@code metrics.jsonl},
 * {@code resolved_config.yaml} (every value used, seed included) and {@code eval_results.json}.
 */
final class TrainCommand implements Command {
    static final String RESOLVED = "resolved_config.yaml";

    @Override
    public String name() {
        return "train";
    }

    @Override
    public String summary() {
        return "fine-tune from a YAML config (model, data, task, PEFT method, training arguments)";
    }

    @Override
    public String usage() {
        return """
                usage: peft4j train CONFIG.yaml [--output-dir DIR] [--set KEY=VALUE ...] [--resume]

                Runs the fine-tuning a YAML file describes. Example (examples/configs/imdb-lora.yaml):

                  model: minilm                  # minilm, bge-small, or a Hugging Face folder (BERT, GPT-2, LLaMA family)
                  task: sequence_classification  # BERT, or a decoder with a new score head (last real token);
                                                 # or causal_lm (decoders; data = JSONL with a text field, or .txt lines)
                  data:
                    train: imdb                  # 'imdb' = bundled train split, or a .jsonl/.csv/.tsv file
                    eval: imdb:test              # optional; evaluated after every epoch
                    text_field: text             # field names in the files (defaults text, label)
                    label_field: label
                    labels: [negative, positive] # class names (in index order) when labels are names
                    max_length: 128
                  peft:                          # the method's config in PEFT's own keys (adapter_config.json)
                    peft_type: LORA
                    r: 8
                    lora_alpha: 16
                    lora_dropout: 0.1
                    target_modules: [query, value]
                    modules_to_save: [classifier]
                  training:                      # TrainingConfig keys: epochs, max_steps, batch_size, learning_rate,
                    epochs: 1                    #   weight_decay, warmup_ratio, schedule, optimizer, seed, ...
                    batch_size: 16
                    learning_rate: 1.0e-3
                    seed: 42
                  output_dir: runs/imdb-lora     # relative paths are resolved against the current directory

                Writes OUTPUT_DIR/adapter/ (adapter_config.json + adapter_model.safetensors, loadable by PEFT),
                OUTPUT_DIR/metrics.jsonl, OUTPUT_DIR/resolved_config.yaml (every value used, seed included;
                it can be given to peft4j train again) and OUTPUT_DIR/eval_results.json.
                  --output-dir DIR   overrides output_dir
                  --set KEY=VALUE    overrides one value, KEY a dotted path, VALUE in YAML syntax; repeatable:
                                     --set training.epochs=2 --set peft.r=16 --set peft.target_modules=[query,key,value]
                  --resume           continue from the newest checkpoint in OUTPUT_DIR (written every
                                     training.checkpoint_interval steps); the result is bit-identical
                                     to a run that was never interrupted
                """;
    }

    @Override
    public Set<String> valueOptions() {
        return Set.of("output-dir", "set");
    }

    private static void putFinite(ObjectNode n, String key, double v) {
        if (Double.isFinite(v)) {
            n.put(key, v);
        } else {
            n.putNull(key);
        }
    }

    @Override
    public Set<String> flagOptions() {
        return Set.of("resume");
    }

    @Override
    public void run(Args a, PrintStream out, PrintStream err) throws Exception {
        a.expectPositionals(1, "one argument: the config file (peft4j train CONFIG.yaml)");
        Path file = Path.of(a.positionals().get(0));
        TrainRecipe recipe = TrainRecipe.read(file, a.getAll("set"), a.has("output-dir") ? a.getPath("output-dir") : null,
                a.has("resume"));
        out.println("peft4j train: " + file.toAbsolutePath());
        trainAndWrite(recipe, out);
    }

    /**
     * Runs {@code recipe} and writes its output folder (adapter, resolved config, results); also
     * used by {@code peft4j distill} to fine-tune a teacher from its recipe. Returns the adapter folder.
     */
    static Path trainAndWrite(TrainRecipe recipe, PrintStream out) throws java.io.IOException {
        Path outDir = recipe.outputDir();
        // nothing is created on disk before the recipe and its inputs are valid: the files named are
        // checked here, and the task reads the data, loads the model and applies the method before
        // the trainer writes its first line to OUTPUT_DIR (or the adapter is saved)
        recipe.checkInputs();
        TrainTask.Run run = recipe.task().run(recipe, out);
        Files.createDirectories(outDir);

        Path adapterDir = outDir.resolve("adapter");
        run.peft().save(adapterDir);
        if (run.info() != null) {
            run.info().write(adapterDir);
        }
        AtomicFiles.writeString(outDir.resolve(RESOLVED), TrainRecipe.yaml().writeValueAsString(recipe.resolved(run)));
        ObjectNode results = JsonFiles.mapper().createObjectNode();
        // JSON has no NaN/Infinity: a non-finite value (a diverged metric) is written as null, as in metrics.jsonl
        run.result().lastEvalMetrics().forEach((k, v) -> putFinite(results, k, v));
        putFinite(results, "train_loss", run.result().lastLoss());
        results.put("steps", run.result().globalStep());
        results.put("train_seconds", run.seconds());
        AtomicFiles.writeString(outDir.resolve("eval_results.json"), JsonFiles.toPrettyString(results) + "\n");

        out.printf(Locale.ROOT, "trained %d steps in %s%n", run.result().globalStep(), Fmt.duration(run.seconds()));
        run.result().lastEvalMetrics().forEach((k, v) -> out.printf(Locale.ROOT, "eval %s: %.4f%n", k, v));
        out.println("adapter: " + adapterDir);
        out.println("metrics: " + outDir.resolve("metrics.jsonl"));
        out.println("resolved config: " + outDir.resolve(RESOLVED));
        return adapterDir;
    }
}
