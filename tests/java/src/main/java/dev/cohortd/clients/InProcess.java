package dev.cohortd.clients;

import com.google.protobuf.Struct;
import com.google.protobuf.util.JsonFormat;
import dev.openfeature.contrib.providers.flagd.Config;
import dev.openfeature.contrib.providers.flagd.FlagdOptions;
import dev.openfeature.contrib.providers.flagd.FlagdProvider;
import dev.openfeature.sdk.Client;
import dev.openfeature.sdk.FlagEvaluationDetails;
import dev.openfeature.sdk.MutableContext;
import dev.openfeature.sdk.MutableStructure;
import dev.openfeature.sdk.OpenFeatureAPI;
import dev.openfeature.sdk.Value;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * The OpenFeature Java SDK with the flagd provider in IN-PROCESS mode against a {@code cohortd
 * serve} on a flagd-format file: the provider syncs the flag set from cohortd's flagd.sync.v1
 * service and evaluates it locally with its own evaluator (json-logic-java and the provider's
 * {@code targeting.Fractional}: the legacy percentage bucketing, computed in 32-bit floats), so
 * cohortd runs with {@code --flagd-fractional v1}.
 *
 * <pre>java -cp ... dev.cohortd.clients.InProcess SYNC_PORT cases.json</pre>
 *
 * The cases are cohortd's offline answers (tests/flagd_providers/mod.rs). Every flag x context
 * answer (value or the caller's default, variant, reason, error code) and every flag's metadata is
 * compared; each difference is printed on stderr as {@code DIFF ...}. Where the provider's
 * float bucketing may legitimately differ from cohortd's (64-bit) v1 -- a {@code fractional}
 * flag that both resolve to a match, in different variants -- the difference is counted and
 * reported, not fatal; any other difference exits 1. Then the usual exchange: READY-FOR-CHANGE,
 * {@code CHANGED after.json}, a PROVIDER_CONFIGURATION_CHANGED naming the changed flags, the new
 * answers, OK.
 */
public final class InProcess {
  private InProcess() {}

  static final Map<String, Object> DEFAULTS = Map.of(
      "boolean", false, "string", "caller-default", "integer", -7, "float", -7.5,
      "object", new Value(new MutableStructure(Map.of("caller", new Value("default")))));

  record Cases(Struct doc) {
    Map<String, com.google.protobuf.Value> fields() {
      return doc.getFieldsMap();
    }

    Map<String, String> strings(String name) {
      Map<String, String> out = new TreeMap<>();
      fields().get(name).getStructValue().getFieldsMap()
          .forEach((k, v) -> out.put(k, v.getStringValue()));
      return out;
    }

    List<Struct> contexts() {
      List<Struct> out = new ArrayList<>();
      for (com.google.protobuf.Value v : fields().get("contexts").getListValue().getValuesList()) {
        out.add(v.getStructValue());
      }
      return out;
    }

    Struct answer(String key, int i) {
      return fields().get("answers").getStructValue().getFieldsOrThrow(key).getListValue()
          .getValues(i).getStructValue();
    }

    Object metadata(String key) {
      return Main.plain(fields().get("metadata").getStructValue().getFieldsOrThrow(key));
    }

    Set<String> fractionalFlags() {
      Set<String> out = new HashSet<>();
      for (com.google.protobuf.Value v : fields().get("fractionalFlags").getListValue().getValuesList()) {
        out.add(v.getStringValue());
      }
      return out;
    }
  }

  static Cases load(String path) throws Exception {
    Struct.Builder b = Struct.newBuilder();
    JsonFormat.parser().merge(Files.readString(Path.of(path), StandardCharsets.UTF_8), b);
    return new Cases(b.build());
  }

  static MutableContext context(Struct c) {
    MutableContext ctx = new MutableContext();
    c.getFieldsMap().forEach((k, v) -> {
      if (k.equals("targetingKey")) {
        ctx.setTargetingKey(v.getStringValue());
      } else {
        ctx.add(k, v.getStringValue());
      }
    });
    return ctx;
  }

  static FlagEvaluationDetails<?> ask(Client c, String type, String key, MutableContext ctx) {
    switch (type) {
      case "boolean":
        return c.getBooleanDetails(key, false, ctx);
      case "string":
        return c.getStringDetails(key, "caller-default", ctx);
      case "integer":
        return c.getIntegerDetails(key, -7, ctx);
      case "float":
        return c.getDoubleDetails(key, -7.5, ctx);
      default:
        return c.getObjectDetails(key, (Value) DEFAULTS.get("object"), ctx);
    }
  }

  /** A value as plain Java, numbers as Double, for equality with the cases. */
  static Object plain(Object v) {
    if (v instanceof Value) {
      return Main.plain((Value) v);
    }
    if (v instanceof Number) {
      return ((Number) v).doubleValue();
    }
    return v;
  }

  /** flagd's metadata exactly, plus only keys of cohortd's own ({@code cohortd*}). */
  static Object flagdMetadata(Map<String, Object> got) {
    Map<String, Object> out = new TreeMap<>();
    got.forEach((k, v) -> {
      if (!k.startsWith("cohortd")) {
        out.put(k, plain(v));
      }
    });
    return out;
  }

  /** How often each {@link #knownDeviation} was seen, over the whole run. */
  static final Map<String, Integer> deviations = new TreeMap<>();

  /**
   * The provider's documented deviations from flagd's current semantics (which cohortd, the
   * Python and the Node providers follow), each accepted in exactly its shape. In both the
   * application still gets its own default value; only reason and error code differ.
   */
  static String knownDeviation(String key, String type, Struct ctx, Map<String, Object> w,
      List<Object> got, Object expValue) {
    boolean callerDefault = Boolean.TRUE.equals(w.get("callerDefault"));
    // A DISABLED flag is an error FLAG_NOT_FOUND (flagd's older FlagDisabledErrorCode, which
    // flagd's services sent as NOT_FOUND) instead of reason DISABLED.
    if (callerDefault && "DISABLED".equals(w.get("reason"))
        && got.equals(Arrays.asList(expValue, null, "ERROR", "FLAG_NOT_FOUND"))) {
      return "disabled flag -> ERROR FLAG_NOT_FOUND";
    }
    // `defaultVariant: null` (flagd's ADR "Support Explicit Code Default Values") reached is an
    // error GENERAL instead of reason DEFAULT without a variant.
    if (callerDefault && "DEFAULT".equals(w.get("reason")) && w.get("variant") == null
        && got.equals(Arrays.asList(expValue, null, "ERROR", "GENERAL"))) {
      return "null defaultVariant -> ERROR GENERAL";
    }
    // `headline` buckets on cat($flagd.flagKey, email): without `email` the provider's
    // evaluation fails (error GENERAL) where flagd's Go evaluator writes null as "" and
    // buckets on the flag key.
    if (key.equals("headline") && !ctx.containsFields("email")
        && got.equals(Arrays.asList(plain(DEFAULTS.get(type)), null, "ERROR", "GENERAL"))) {
      return "cat over a missing attribute in fractional -> ERROR GENERAL";
    }
    return null;
  }

  /** Compares every answer; returns {compared, tolerated float-bucketing differences}. */
  static int[] compare(Client client, Cases c, boolean quiet) {
    Map<String, String> types = c.strings("flags");
    Map<String, String> wrong = c.strings("wrongTypes");
    Set<String> fractional = c.fractionalFlags();
    List<Struct> ctxs = c.contexts();
    int n = 0;
    int tolerated = 0;
    for (int i = 0; i < ctxs.size(); i++) {
      MutableContext ctx = context(ctxs.get(i));
      for (String key : types.keySet()) {
        Struct want = c.answer(key, i);
        List<String[]> asks = new ArrayList<>();
        asks.add(new String[] {types.get(key), "asType"});
        // A targeting error comes before the type check: the wrong type adds nothing.
        Object asTypeCode = Main.plain(want.getFieldsOrThrow("asType").getStructValue()).get("errorCode");
        if (!"GENERAL".equals(asTypeCode)) {
          asks.add(new String[] {wrong.get(key), "asWrongType"});
        }
        for (String[] ask : asks) {
          Map<String, Object> w = Main.plain(want.getFieldsOrThrow(ask[1]).getStructValue());
          String t = ask[0];
          FlagEvaluationDetails<?> d = ask(client, t, key, ctx);
          Object expValue = Boolean.TRUE.equals(w.get("callerDefault"))
              ? plain(DEFAULTS.get(t)) : w.get("value");
          List<Object> got = Arrays.asList(plain(d.getValue()), d.getVariant(), d.getReason(),
              d.getErrorCode() == null ? null : d.getErrorCode().name());
          List<Object> exp = Arrays.asList(expValue, w.get("variant"), w.get("reason"),
              w.get("errorCode"));
          n++;
          String known = got.equals(exp) ? null : knownDeviation(key, t, ctxs.get(i), w, got, expValue);
          if (known != null) {
            deviations.merge(known, 1, Integer::sum);
            continue;
          }
          if (!got.equals(exp)) {
            boolean floatBucket = fractional.contains(key) && t.equals(types.get(key))
                && "TARGETING_MATCH".equals(d.getReason()) && "TARGETING_MATCH".equals(w.get("reason"))
                && !Objects.equals(d.getVariant(), w.get("variant"));
            String msg = "context " + Main.plain(ctxs.get(i)) + ": " + key
                + " as " + t + ": got " + got + ", want " + exp;
            if (!floatBucket) {
              Main.fail(msg);
            }
            tolerated++;
            if (!quiet) {
              System.err.println("DIFF (float bucketing) " + msg);
            }
            continue;
          }
          if (w.get("errorCode") == null) {
            Object meta = flagdMetadata(d.getFlagMetadata().asUnmodifiableMap());
            if (!meta.equals(c.metadata(key))) {
              Main.fail(key + " metadata: got " + d.getFlagMetadata().asUnmodifiableMap()
                  + ", want " + c.metadata(key));
            }
          }
        }
      }
    }
    return new int[] {n, tolerated};
  }

  /**
   * The bucketing sweep: every unit of {@code cases.sweep} through the split-only flags; returns
   * how many got another variant than cohortd's v1 (each printed), failing on anything but a
   * TARGETING_MATCH.
   */
  static int sweep(Client client, Cases c) {
    Struct sw = c.fields().get("sweep").getStructValue();
    List<com.google.protobuf.Value> ctxs = sw.getFieldsOrThrow("contexts").getListValue().getValuesList();
    Map<String, String> types = c.strings("flags");
    int diffs = 0;
    int total = 0;
    for (Map.Entry<String, com.google.protobuf.Value> e
        : sw.getFieldsOrThrow("variants").getStructValue().getFieldsMap().entrySet()) {
      String key = e.getKey();
      List<com.google.protobuf.Value> want = e.getValue().getListValue().getValuesList();
      for (int i = 0; i < ctxs.size(); i++) {
        Struct ctx = ctxs.get(i).getStructValue();
        FlagEvaluationDetails<?> d = ask(client, types.get(key), key, context(ctx));
        total++;
        if (!"TARGETING_MATCH".equals(d.getReason())) {
          Main.fail("sweep " + key + " " + Main.plain(ctx) + ": " + d);
        }
        if (!want.get(i).getStringValue().equals(d.getVariant())) {
          diffs++;
          System.err.println("SWEEP DIFF " + key + " " + Main.plain(ctx) + ": java "
              + d.getVariant() + ", cohortd v1 " + want.get(i).getStringValue());
        }
      }
    }
    System.err.println("sweep: " + diffs + " of " + total + " bucketings differ from cohortd v1 ("
        + ctxs.size() + " units x " + (total / Math.max(1, ctxs.size())) + " flags)");
    // 32-bit rounding can only move a unit whose bucket lies within a float step (about 4e-6 on
    // the 0..100 scale) of a cumulative boundary: about 1e-7 of units per boundary. One in a
    // thousand is far above that and far below what another bucketing form gives (about half).
    if (diffs > total / 1000) {
      Main.fail("sweep: " + diffs + " of " + total + " bucketings differ: not float rounding, "
          + "another fractional form");
    }
    return diffs;
  }

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    Cases cases = load(args[1]);
    OpenFeatureAPI api = OpenFeatureAPI.getInstance();
    api.setProviderAndWait(new FlagdProvider(FlagdOptions.builder()
        .resolverType(Config.Resolver.IN_PROCESS).host("127.0.0.1").port(port).deadline(5000)
        .build()));
    Client client = api.getClient();
    int[] before = compare(client, cases, false);
    if (before[1] > 1) {
      Main.fail(before[1] + " fractional answers in another variant: not float rounding");
    }
    if (before[0] < 2 * cases.contexts().size() * (cases.strings("flags").size() - 1)) {
      Main.fail("compared only " + before[0] + " answers");
    }
    sweep(client, cases);
    FlagEvaluationDetails<String> nf =
        client.getStringDetails("no-such-flag", "fallback", new MutableContext("u1"));
    if (!Arrays.asList(nf.getValue(), nf.getReason(), String.valueOf(nf.getErrorCode()))
        .equals(List.of("fallback", "ERROR", "FLAG_NOT_FOUND"))) {
      Main.fail("unknown flag: got " + nf);
    }

    // Registered only now: the first sync also announces a change.
    Set<String> seen = java.util.concurrent.ConcurrentHashMap.newKeySet();
    api.onProviderConfigurationChanged(d -> seen.addAll(d.getFlagsChanged()));
    System.out.println("READY-FOR-CHANGE");
    System.out.flush();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line = String.valueOf(in.readLine()).trim();
    if (!line.startsWith("CHANGED ")) {
      Main.fail("driver said " + line + ", want CHANGED <after.json>");
    }
    Cases after = load(line.substring("CHANGED ".length()));
    List<String> want = List.of("banner", "new-checkout", "max-items", "retired");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!seen.containsAll(want)) {
      if (System.nanoTime() > deadline) {
        Main.fail("PROVIDER_CONFIGURATION_CHANGED named " + seen + " within 30 s, want " + want);
      }
      Thread.sleep(50);
    }
    // The event and the new set come from one sync message; a short bounded retry covers a
    // provider that fires the event before it swaps the set (compare exits on a real mismatch,
    // so retry only while the banner, a static flag, still shows the old answer).
    long retry = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (Boolean.TRUE.equals(client.getBooleanDetails("banner", false, new MutableContext("u1")).getValue())
        && System.nanoTime() < retry) {
      Thread.sleep(100);
    }
    int[] afterCounts = compare(client, after, false);
    if (afterCounts[1] > 1) {
      Main.fail(afterCounts[1] + " fractional answers in another variant after the change");
    }
    api.shutdown();
    System.err.println("compared " + before[0] + " answers before the change (" + before[1]
        + " float-bucketing differences) and " + afterCounts[0] + " after (" + afterCounts[1]
        + "); documented deviations over both: " + deviations);
    System.out.println("OK");
    System.out.flush();
    System.exit(0);
  }
}
