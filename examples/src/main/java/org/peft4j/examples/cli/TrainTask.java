package org.peft4j.examples.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.peft4j.core.peft.PeftModel;
import org.peft4j.core.peft.TaskType;
import org.peft4j.core.tensor.Rng;
import org.peft4j.core.train.DataLoader;
import org.peft4j.core.train.EvalFunction;
import org.peft4j.core.train.LossFunction;
import org.peft4j.core.train.TrainResult;
import org.peft4j.core.train.Trainer;
import org.peft4j.core.train.TrainerCheckpoint;
import org.peft4j.core.train.TrainingConfig;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One kind of {@code peft4j train} run ({@code task:} in the recipe): it loads the model and data
 * the recipe names, applies the PEFT method, and trains with the shared {@link Trainer}. The
 * command around it writes the adapter, the resolved config and the results.
 */
interface TrainTask {
    String SEQ_CLS = "sequence_classification";
    String CAUSAL_LM = "causal_lm";

    /** Every task, by the name a recipe uses (the first is the default). */
    List<TrainTask> ALL = List.of(new SequenceClassificationTask(), new CausalLmTask(), new Seq2SeqTask());

    /** The {@code task:} value. */
    String name();

    /** The PEFT {@code task_type} written to the adapter when the recipe's peft section has none. */
    TaskType peftTaskType();

    /** Trains as the recipe says; lines for the user go to {@code out}. */
    Run run(TrainRecipe recipe, PrintStream out) throws IOException;

    /**
     * What a run produced.
     *
     * @param info     written next to the adapter ({@link Classification#TASK_FILE}), or null
     * @param dataInfo the resolved data section ({@link TrainRecipe#dataInfo})
     */
    record Run(PeftModel peft, TrainResult result, double seconds, Classification.TaskInfo info, ObjectNode dataInfo) {
    }

    /** The task called {@code name} (case and {@code -}/{@code _} as the user likes); {@code file} names the recipe in errors. */
    static TrainTask forName(String name, Path file) {
        String n = name.toLowerCase(Locale.ROOT).replace('-', '_');
        List<String> names = new ArrayList<>();
        for (TrainTask t : ALL) {
            if (t.name().equals(n)) {
                return t;
            }
            names.add(t.name());
        }
        throw new CliException(file + ": task '" + n + "' is not one of " + String.join(", ", names));
    }

    /**
     * Every generator that draws dropout masks during training, each once, in model-tree order
     * (the same in every process): the backbone's, then any other dropout module's (a new head's)
     * and every LoRA layer's. The trainer checkpoints and restores them all, which is what makes
     * a resumed run draw the same masks as an uninterrupted one.
     */
    static List<Rng> dropoutRngs(PeftModel pm, Rng backbone) {
        java.util.IdentityHashMap<Rng, Boolean> seen = new java.util.IdentityHashMap<>();
        List<Rng> out = new ArrayList<>();
        java.util.function.Consumer<Rng> add = r -> {
            if (r != null && seen.put(r, Boolean.TRUE) == null) {
                out.add(r);
            }
        };
        add.accept(backbone);
        for (org.peft4j.core.nn.Module m : pm.namedModules().values()) {
            if (m instanceof org.peft4j.core.nn.Dropout d) {
                add.accept(d.rng());
            } else if (m instanceof org.peft4j.lora.LoraLayer l) {
                l.dropoutRngs().forEach(add);
            }
        }
        return out;
    }

    /** Trains {@code pm} on {@code train} (evaluating on {@code eval} if given) and leaves it in eval mode. */
    static TrainResult train(PeftModel pm, Rng dropout, LossFunction loss, EvalFunction evalFn,
                             DataLoader<?> train, DataLoader<?> eval, TrainingConfig cfg, PrintStream out) {
        return train(pm, dropout, loss, evalFn, train, eval, cfg, out, false);
    }

    /**
     * As above; with {@code resume}, continues from the newest complete checkpoint in the output
     * folder (the trainer restores parameters, optimizer, schedule, data order and the dropout
     * generator, so the result is bit-identical to an uninterrupted run), or starts afresh if none.
     */
    static TrainResult train(PeftModel pm, Rng dropout, LossFunction loss, EvalFunction evalFn,
                             DataLoader<?> train, DataLoader<?> eval, TrainingConfig cfg, PrintStream out, boolean resume) {
        Trainer.Builder b = Trainer.builder(pm, pm.trainableParameters(), loss, cfg).evalFunction(evalFn).progressStream(out);
        b.rngs(dropoutRngs(pm, dropout));
        Trainer trainer = b.build();
        if (resume && cfg.outputDir() != null) {
            java.util.Optional<java.nio.file.Path> latest = TrainerCheckpoint.latest(cfg.outputDir());
            if (latest.isPresent()) {
                out.println("resuming from " + latest.get());
                trainer.resume(latest.get());
            } else {
                out.println("no checkpoint in " + cfg.outputDir() + " yet: starting from the beginning");
            }
        }
        TrainResult r = trainer.fit(train, eval);
        pm.eval();
        return r;
    }
}
