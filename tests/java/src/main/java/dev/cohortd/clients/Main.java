package dev.cohortd.clients;

import com.google.protobuf.ListValue;
import com.google.protobuf.Struct;
import com.google.protobuf.TextFormat;
import com.google.protobuf.util.JsonFormat;
import dev.cohortd.v1.AssignAllRequest;
import dev.cohortd.v1.AssignAllResponse;
import dev.cohortd.v1.AssignRequest;
import dev.cohortd.v1.AssignResponse;
import dev.cohortd.v1.AssignmentGrpc;
import dev.cohortd.v1.ExplainResponse;
import dev.cohortd.v1.WatchEvent;
import dev.cohortd.v1.WatchRequest;
import dev.openfeature.contrib.providers.flagd.Config;
import dev.openfeature.contrib.providers.flagd.FlagdOptions;
import dev.openfeature.contrib.providers.flagd.FlagdProvider;
import dev.openfeature.sdk.Client;
import dev.openfeature.sdk.ErrorCode;
import dev.openfeature.sdk.FlagEvaluationDetails;
import dev.openfeature.sdk.MutableContext;
import dev.openfeature.sdk.OpenFeatureAPI;
import dev.openfeature.sdk.Value;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Checks a running {@code cohortd serve} from Java: the grpc-java client generated from
 * proto/cohortd/v1 (Assign, AssignAll, Explain, Watch) and the OpenFeature Java SDK with the
 * flagd provider in RPC mode, against the lines {@code cohortd assign --all} printed offline for
 * the same contexts (cases.json, written by tests/clients_java.rs at test time).
 *
 * <pre>java -cp ... dev.cohortd.clients.Main HOST PORT cases.json</pre>
 *
 * Driven over stdio: prints READY-FOR-CHANGE, reads {@code CHANGED <cases.json>} once the
 * driver rewrote the config, waits for the Watch event and PROVIDER_CONFIGURATION_CHANGED,
 * checks the new answers and prints OK. A mismatch is printed on stderr and exits 1.
 */
public final class Main {
  private Main() {}

  static void fail(String msg) {
    System.err.println("FAILED " + msg);
    System.exit(1);
  }

  /** A protobuf Value as plain Java (numbers as Double), for equality checks. */
  static Object plain(com.google.protobuf.Value v) {
    switch (v.getKindCase()) {
      case NULL_VALUE:
      case KIND_NOT_SET:
        return null;
      case BOOL_VALUE:
        return v.getBoolValue();
      case NUMBER_VALUE:
        return v.getNumberValue();
      case STRING_VALUE:
        return v.getStringValue();
      case STRUCT_VALUE:
        return plain(v.getStructValue());
      case LIST_VALUE:
      default:
        List<Object> out = new ArrayList<>();
        for (com.google.protobuf.Value x : v.getListValue().getValuesList()) {
          out.add(plain(x));
        }
        return out;
    }
  }

  static Map<String, Object> plain(Struct s) {
    Map<String, Object> out = new TreeMap<>();
    s.getFieldsMap().forEach((k, x) -> out.put(k, plain(x)));
    return out;
  }

  /** An OpenFeature Value as plain Java, numbers as Double. */
  static Object plain(Value v) {
    if (v == null || v.isNull()) {
      return null;
    }
    if (v.isBoolean()) {
      return v.asBoolean();
    }
    if (v.isNumber()) {
      return v.asDouble();
    }
    if (v.isString()) {
      return v.asString();
    }
    if (v.isList()) {
      List<Object> out = new ArrayList<>();
      for (Value x : v.asList()) {
        out.add(plain(x));
      }
      return out;
    }
    Map<String, Object> out = new TreeMap<>();
    v.asStructure().asMap().forEach((k, x) -> out.put(k, plain(x)));
    return out;
  }

  record Cases(List<Struct> contexts, List<Struct> expected) {
    String version() {
      return expected.get(0).getFieldsOrThrow("version").getStringValue();
    }

    Map<String, Struct> assignments(int i) {
      Map<String, Struct> out = new TreeMap<>();
      expected.get(i).getFieldsOrThrow("assignments").getStructValue().getFieldsMap()
          .forEach((k, v) -> out.put(k, v.getStructValue()));
      return out;
    }
  }

  static Cases load(String path) throws Exception {
    Struct.Builder b = Struct.newBuilder();
    JsonFormat.parser().merge(Files.readString(Path.of(path), StandardCharsets.UTF_8), b);
    Struct s = b.build();
    List<Struct> ctxs = new ArrayList<>();
    List<Struct> exp = new ArrayList<>();
    for (com.google.protobuf.Value v : s.getFieldsOrThrow("contexts").getListValue().getValuesList()) {
      ctxs.add(v.getStructValue());
    }
    ListValue lines = s.getFieldsOrThrow("expected").getListValue();
    for (com.google.protobuf.Value v : lines.getValuesList()) {
      exp.add(v.getStructValue());
    }
    if (ctxs.isEmpty() || ctxs.size() != exp.size()) {
      fail(path + ": " + ctxs.size() + " contexts for " + exp.size() + " expected lines");
    }
    return new Cases(ctxs, exp);
  }

  static String str(Struct s, String field) {
    return s.getFieldsOrThrow(field).getStringValue();
  }

  static void checkAssignment(String what, AssignResponse got, String key, Struct want, String version) {
    String reason = "REASON_" + str(want, "reason").toUpperCase();
    boolean ok = got.getExperiment().equals(key)
        && got.getVariant().equals(str(want, "variant"))
        && got.getEnrolled() == want.getFieldsOrThrow("enrolled").getBoolValue()
        && got.getReason().name().equals(reason)
        && got.getEpoch() == (int) want.getFieldsOrThrow("epoch").getNumberValue()
        && got.getSaltFingerprint().equals(str(want, "saltFingerprint"))
        && got.getConfigVersion().equals(version)
        && Objects.equals(plain(got.getValue()), plain(want.getFieldsOrThrow("value")));
    if (!ok) {
      fail(what + " " + key + ": got " + TextFormat.shortDebugString(got) + ", want "
          + plain(want) + " (version " + version + ")");
    }
  }

  static void checkApi(String name, AssignmentGrpc.AssignmentBlockingStub stub, Cases cases) {
    for (int i = 0; i < cases.contexts().size(); i++) {
      Struct ctx = cases.contexts().get(i);
      String version = str(cases.expected().get(i), "version");
      Map<String, Struct> want = cases.assignments(i);
      AssignAllResponse all = stub.assignAll(AssignAllRequest.newBuilder().setContext(ctx).build());
      if (!all.getConfigVersion().equals(version) || all.getAssignmentsCount() != want.size()) {
        fail(name + " AssignAll " + ctx + ": " + all.getAssignmentsCount() + " at " + all.getConfigVersion());
      }
      for (AssignResponse a : all.getAssignmentsList()) {
        Struct w = want.get(a.getExperiment());
        if (w == null) {
          fail(name + " AssignAll: unexpected experiment " + a.getExperiment());
        }
        checkAssignment(name + " AssignAll", a, a.getExperiment(), w, version);
      }
      for (Map.Entry<String, Struct> e : want.entrySet()) {
        AssignRequest req = AssignRequest.newBuilder().setExperiment(e.getKey()).setContext(ctx).build();
        checkAssignment(name + " Assign", stub.assign(req), e.getKey(), e.getValue(), version);
        ExplainResponse ex = stub.explain(req);
        checkAssignment(name + " Explain", ex.getAssignment(), e.getKey(), e.getValue(), version);
        if (ex.getStepsCount() == 0) {
          fail(name + " Explain " + e.getKey() + ": no steps");
        }
      }
    }
    try {
      stub.assign(AssignRequest.newBuilder().setExperiment("no-such-flag")
          .setContext(cases.contexts().get(0)).build());
      fail(name + " Assign unknown experiment: succeeded");
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != Status.Code.NOT_FOUND
          || !String.valueOf(e.getStatus().getDescription()).contains("no-such-flag")) {
        fail(name + " Assign unknown experiment: " + e.getStatus() + ", want NOT_FOUND naming it");
      }
    }
  }

  static void checkOpenFeature(String name, Client client, Cases cases) {
    int n = 0;
    for (int i = 0; i < cases.contexts().size(); i++) {
      Map<String, Object> c = plain(cases.contexts().get(i));
      if (!(c.get("targetingKey") instanceof String tk)) {
        continue;
      }
      MutableContext ec = new MutableContext(tk);
      c.forEach((k, v) -> {
        if (!k.equals("targetingKey")) {
          ec.add(k, String.valueOf(v));
        }
      });
      for (Map.Entry<String, Struct> e : cases.assignments(i).entrySet()) {
        String key = e.getKey();
        Struct want = e.getValue();
        Object wantValue = plain(want.getFieldsOrThrow("value"));
        FlagEvaluationDetails<?> d;
        Object got;
        if (wantValue instanceof Boolean b) {
          d = client.getBooleanDetails(key, !b, ec);
          got = d.getValue();
        } else if (wantValue instanceof String) {
          d = client.getStringDetails(key, "fallback", ec);
          got = d.getValue();
        } else if (wantValue instanceof Double) {
          d = client.getDoubleDetails(key, -1.0, ec);
          got = d.getValue();
        } else {
          FlagEvaluationDetails<Value> od = client.getObjectDetails(key, new Value(), ec);
          d = od;
          got = plain(od.getValue());
        }
        if (d.getErrorCode() != null || !str(want, "variant").equals(d.getVariant())
            || !Objects.equals(got, wantValue)) {
          fail(name + " OpenFeature " + key + " " + c + ": got " + got + " variant " + d.getVariant()
              + " reason " + d.getReason() + " error " + d.getErrorCode() + " " + d.getErrorMessage()
              + ", want " + wantValue + " variant " + str(want, "variant"));
        }
        if (str(want, "reason").equals("split")
            && !"SPLIT".equals(d.getReason()) && !"STATIC".equals(d.getReason())) {
          fail(name + " OpenFeature " + key + ": reason " + d.getReason() + " for a split assignment");
        }
        n++;
      }
    }
    if (n == 0) {
      fail(name + " OpenFeature: no context with a targetingKey");
    }
    MutableContext ec = new MutableContext("user-1");
    FlagEvaluationDetails<String> nf = client.getStringDetails("no-such-flag", "fallback", ec);
    if (!"fallback".equals(nf.getValue()) || nf.getErrorCode() != ErrorCode.FLAG_NOT_FOUND) {
      fail(name + " OpenFeature unknown flag: " + nf);
    }
    for (Map.Entry<String, Struct> e : cases.assignments(0).entrySet()) {
      if (e.getValue().getFieldsOrThrow("value").hasStringValue()) {
        FlagEvaluationDetails<Boolean> tm = client.getBooleanDetails(e.getKey(), true, ec);
        if (!tm.getValue() || tm.getErrorCode() != ErrorCode.TYPE_MISMATCH) {
          fail(name + " OpenFeature " + e.getKey() + " as boolean: " + tm);
        }
        break;
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      fail("usage: Main HOST PORT cases.json");
    }
    String host = args[0];
    int port = Integer.parseInt(args[1]);
    Cases cases = load(args[2]);

    ManagedChannel channel = ManagedChannelBuilder.forAddress(host, port).usePlaintext().build();
    AssignmentGrpc.AssignmentBlockingStub stub = AssignmentGrpc.newBlockingStub(channel)
        .withWaitForReady();
    Iterator<WatchEvent> watch = AssignmentGrpc.newBlockingStub(channel).watch(WatchRequest.getDefaultInstance());
    WatchEvent first = watch.next();
    if (!first.getInitial() || !first.getConfigVersion().equals(cases.version())) {
      fail("Watch: first event " + first + ", want initial with version " + cases.version());
    }
    BlockingQueue<WatchEvent> events = new LinkedBlockingQueue<>();
    Thread reader = new Thread(() -> {
      try {
        watch.forEachRemaining(events::add);
      } catch (StatusRuntimeException e) {
        // The channel closes at the end of the run.
      }
    });
    reader.setDaemon(true);
    reader.start();
    checkApi("grpc-java", stub, cases);

    OpenFeatureAPI api = OpenFeatureAPI.getInstance();
    BlockingQueue<List<String>> changed = new LinkedBlockingQueue<>();
    api.onProviderConfigurationChanged(d -> changed.add(new ArrayList<>(d.getFlagsChanged())));
    // The provider caches STATIC answers (reason CACHED on later reads); the cache
    // is off so every read checks what cohortd answers.
    api.setProviderAndWait(new FlagdProvider(FlagdOptions.builder()
        .resolverType(Config.Resolver.RPC).host(host).port(port).deadline(5000)
        .cacheType("disabled").build()));
    Client client = api.getClient();
    checkOpenFeature("flagd-rpc", client, cases);

    System.out.println("READY-FOR-CHANGE");
    System.out.flush();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line = String.valueOf(in.readLine()).trim();
    if (!line.startsWith("CHANGED ")) {
      fail("driver said " + line + ", want CHANGED <cases.json>");
    }
    Cases next = load(line.substring("CHANGED ".length()));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (true) {
      WatchEvent ev = events.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
      if (ev == null) {
        fail("Watch: no event for version " + next.version());
      }
      if (ev.getConfigVersion().equals(next.version())) {
        if (ev.getChangedCount() + ev.getAddedCount() + ev.getRemovedCount() == 0) {
          fail("Watch: event for " + next.version() + " lists no change");
        }
        break;
      }
    }
    List<String> flags = changed.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    if (flags == null) {
      fail("no PROVIDER_CONFIGURATION_CHANGED event");
    }
    checkApi("grpc-java after change", stub, next);
    checkOpenFeature("flagd-rpc after change", client, next);
    api.shutdown();
    channel.shutdownNow();
    System.out.println("OK");
    System.out.flush();
    System.exit(0);
  }
}
