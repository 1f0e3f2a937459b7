package org.peft4j.core.peft;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.peft4j.core.nn.Module;
import org.peft4j.core.nn.Parameter;
import org.peft4j.core.nn.UnaryModule;
import org.peft4j.core.tensor.Ops;
import org.peft4j.core.tensor.Tensor;

import java.util.List;
import java.util.Map;

/**
 * A test-only PEFT method ({@code peft_type = "TEST_SCALE"}): one learned scalar {@code s} per
 * target multiplies its output, {@code y = s·base(x)}. It writes its config, {@code inject}, its
 * math and its tensor names — nothing for switching, disabling, deleting, saving, strict loading,
 * mixed batches or modules_to_save, which the core does: the proof that the SPI is not LoRA-shaped.
 */
public final class ScaleMethod implements PeftMethod {
    public static final class ScaleConfig extends PeftConfig {
        @JsonProperty("target_modules") List<String> targetModules;
        @JsonProperty("init_scale") double initScale = 1.0;

        @Override
        public String peftType() {
            return "TEST_SCALE";
        }
    }

    /** {@code s·base(x)}; in a mixed batch only the adapter's rows: {@code y ⊙ (1 + mask·(s − 1))}, mask {@code [lead, 1, …]}. */
    public static final class ScaleLayer extends BaseAdapterLayer implements UnaryModule {
        ScaleLayer(Module base) {
            super("base_layer", base);
            registerModule("scale", new ParameterDict());
        }

        public Parameter scale(String a) {
            return child("scale", ParameterDict.class).getParameter(a);
        }

        void addAdapter(String a, double init) {
            registerAdapter(a);
            child("scale", ParameterDict.class).put(a, new Parameter(Nd4j.createFromArray(new float[]{(float) init})));
        }

        @Override
        protected void removeAdapterState(String a) {
            replace("scale", child("scale", ParameterDict.class).without(a));
        }

        @Override
        public Map<String, Parameter> adapterParameters(String a) {
            return hasAdapter(a) ? Map.of("scale." + a, scale(a)) : Map.of();
        }

        @Override
        public Map<String, Parameter> savedTensors(String a) {
            return Map.of("scale", scale(a));
        }

        @Override
        public Tensor forward(Tensor x) {
            return adaptedForward(() -> ((UnaryModule) baseLayer()).forward(x), () -> x.size(0), (y, a, rows) -> {
                if (rows == null) {
                    return Ops.mul(y, scale(a));
                }
                long[] maskShape = new long[y.rank()];
                java.util.Arrays.fill(maskShape, 1);
                maskShape[0] = y.size(0);
                INDArray mask = Nd4j.zeros(y.value().dataType(), maskShape);
                for (int r : rows) {
                    mask.putScalar(r, 1.0);
                }
                return Ops.mul(y, Ops.add(Ops.mul(Ops.add(scale(a), -1.0), Tensor.constant(mask)), 1.0));
            });
        }
    }

    @Override
    public String peftType() {
        return "TEST_SCALE";
    }

    @Override
    public Class<? extends PeftConfig> configClass() {
        return ScaleConfig.class;
    }

    @Override
    public List<String> inject(Module model, PeftConfig config, String adapterName, boolean forLoading) {
        ScaleConfig c = (ScaleConfig) config;
        List<String> targets = TargetMatcher.findTargets(model, new TargetMatcher.Spec(TargetModules.of(c.targetModules),
                null, null, null, c.modulesToSave(), c.taskType()));
        for (String key : targets) {
            Module m = model.get(key);
            ScaleLayer layer = m instanceof ScaleLayer s ? s : new ScaleLayer(m);
            layer.addAdapter(adapterName, c.initScale);
            if (layer != m) {
                model.replace(key, layer);
            }
        }
        return targets;
    }

    /** Keys with the adapter name inside ({@code <path>.scale.<adapter>}) stand for {@code <path>.scale}. */
    @Override
    public String normalizeKey(String storedKey) {
        return storedKey.replaceFirst("^(.*)\\.scale\\.[^.]+$", "$1.scale");
    }
}
