// Laurel's client for Unity and .NET games (netstandard2.0, the BCL only): stats reported
// exactly once through a persisted queue, achievements read back, unlocks live. The same
// surface and guarantees as the TypeScript SDK (docs/sdks.md).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Laurel
{
    /// <summary>An event waiting to be sent, with its id fixed when it was reported.</summary>
    public sealed class QueuedEvent
    {
        public string EventId;
        public string Stat;
        public object Value;
        /// <summary>When the game reported it, in milliseconds since the epoch.</summary>
        public long Ts;
        /// <summary>The player, for a game server's events.</summary>
        public string PlayerId;

        internal Dictionary<string, object> ToJson()
        {
            var map = new Dictionary<string, object>
            {
                { "event_id", EventId }, { "stat", Stat }, { "value", Value }, { "ts", Ts },
            };
            if (PlayerId != null) map["player_id"] = PlayerId;
            return map;
        }

        internal static QueuedEvent FromJson(Dictionary<string, object> map)
        {
            object player;
            map.TryGetValue("player_id", out player);
            return new QueuedEvent
            {
                EventId = (string)map["event_id"],
                Stat = (string)map["stat"],
                Value = map["value"],
                Ts = Convert.ToInt64(map["ts"], CultureInfo.InvariantCulture),
                PlayerId = player as string,
            };
        }
    }

    /// <summary>Where unsent events are kept between runs of the game.</summary>
    public interface IQueueStore
    {
        List<QueuedEvent> Load();
        void Save(IList<QueuedEvent> events);
    }

    /// <summary>A queue in memory only: lost with the process.</summary>
    public sealed class MemoryQueueStore : IQueueStore
    {
        List<QueuedEvent> events = new List<QueuedEvent>();
        public List<QueuedEvent> Load() { lock (this) return new List<QueuedEvent>(events); }
        public void Save(IList<QueuedEvent> saved) { lock (this) events = new List<QueuedEvent>(saved); }
    }

    /// <summary>
    /// A queue in a JSON file (in Unity: under <c>Application.persistentDataPath</c>), replaced
    /// whole on each save: written aside, then moved over it.
    /// </summary>
    public sealed class FileQueueStore : IQueueStore
    {
        readonly string path;
        public FileQueueStore(string path) { this.path = path; }

        public List<QueuedEvent> Load()
        {
            if (!File.Exists(path)) return new List<QueuedEvent>();
            var list = Json.Parse(File.ReadAllText(path, Encoding.UTF8)) as List<object>;
            if (list == null) return new List<QueuedEvent>();
            return list.Select(e => QueuedEvent.FromJson((Dictionary<string, object>)e)).ToList();
        }

        public void Save(IList<QueuedEvent> events)
        {
            lock (this)
            {
                var dir = Path.GetDirectoryName(Path.GetFullPath(path));
                if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                var aside = path + ".tmp";
                File.WriteAllText(aside, Json.Write(events.Select(e => e.ToJson()).ToList()), Encoding.UTF8);
                if (File.Exists(path)) File.Replace(aside, path, null);
                else File.Move(aside, path);
            }
        }
    }

    /// <summary>
    /// An error as a value: the server's problem (RFC 9457) type, status, title, detail and the
    /// fields it names; or "network" / "timeout" when no answer came (status 0).
    /// </summary>
    public sealed class LaurelError : Exception
    {
        public readonly string Type;
        public readonly int Status;
        public readonly string Title;
        public readonly string Detail;
        /// <summary>The fields the problem names: each with "field", "reason", and "index" in a batch.</summary>
        public readonly List<Dictionary<string, object>> Errors;
        /// <summary>Seconds the server asked to wait, when it did.</summary>
        public readonly int? RetryAfter;

        public LaurelError(string type, int status, string title, string detail,
            List<Dictionary<string, object>> errors, int? retryAfter)
            : base(detail != null ? title + ": " + detail : title)
        {
            Type = type; Status = status; Title = title; Detail = detail;
            Errors = errors ?? new List<Dictionary<string, object>>();
            RetryAfter = retryAfter;
        }

        /// <summary>Whether the same request may work later (no answer, 408, 429, 5xx).</summary>
        public bool Retryable { get { return Status == 0 || Status == 408 || Status == 429 || Status >= 500; } }

        internal static async Task<LaurelError> Of(HttpResponseMessage response)
        {
            int? retry = null;
            if (response.Headers.RetryAfter != null && response.Headers.RetryAfter.Delta.HasValue)
                retry = (int)response.Headers.RetryAfter.Delta.Value.TotalSeconds;
            Dictionary<string, object> problem = null;
            try { problem = Json.Parse(await response.Content.ReadAsStringAsync().ConfigureAwait(false)) as Dictionary<string, object>; }
            catch (Exception) { }
            problem = problem ?? new Dictionary<string, object>();
            object type, title, detail, errors;
            problem.TryGetValue("type", out type);
            problem.TryGetValue("title", out title);
            problem.TryGetValue("detail", out detail);
            problem.TryGetValue("errors", out errors);
            var fields = errors is List<object>
                ? ((List<object>)errors).OfType<Dictionary<string, object>>().ToList()
                : new List<Dictionary<string, object>>();
            return new LaurelError(type as string ?? "about:blank", (int)response.StatusCode,
                title as string ?? response.ReasonPhrase, detail as string, fields, retry);
        }

        internal static LaurelError Network(Exception e)
        {
            bool timeout = e is TaskCanceledException || e is OperationCanceledException;
            return new LaurelError(timeout ? "timeout" : "network", 0, timeout ? "timed out" : "no answer",
                e.Message, null, null);
        }
    }

    /// <summary>UUIDv7 (RFC 9562): Unix milliseconds, then random bits.</summary>
    public static class Uuid7
    {
        static readonly System.Security.Cryptography.RandomNumberGenerator Rng =
            System.Security.Cryptography.RandomNumberGenerator.Create();

        public static string New(long unixMs)
        {
            var b = new byte[16];
            lock (Rng) Rng.GetBytes(b);
            for (int i = 5; i >= 0; i--) { b[i] = (byte)(unixMs & 0xff); unixMs >>= 8; }
            b[6] = (byte)((b[6] & 0x0f) | 0x70);
            b[8] = (byte)((b[8] & 0x3f) | 0x80);
            var hex = BitConverter.ToString(b).Replace("-", "").ToLowerInvariant();
            return hex.Substring(0, 8) + "-" + hex.Substring(8, 4) + "-" + hex.Substring(12, 4) + "-" +
                hex.Substring(16, 4) + "-" + hex.Substring(20);
        }
    }

    /// <summary>What a flush did: events the server took, events still queued, and why it stopped.</summary>
    public sealed class FlushResult
    {
        public int Sent;
        public int Pending;
        public LaurelError Error;
    }

    /// <summary>How a client is made.</summary>
    public sealed class LaurelOptions
    {
        public string Url;
        /// <summary>The token, asked for again when refused (401) or when a live stream's expires.</summary>
        public Func<Task<string>> Token;
        public IQueueStore Store = new MemoryQueueStore();
        public int BatchSize = 100;
        /// <summary>How often queued events are sent; 0: only on Flush.</summary>
        public TimeSpan FlushInterval = TimeSpan.FromSeconds(1);
        public TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
        /// <summary>Accept-Language; default: the current UI culture.</summary>
        public string Locale = CultureInfo.CurrentUICulture.Name;
        /// <summary>Told of each error the flusher and the live stream meet (they never throw).</summary>
        public Action<LaurelError> OnError;
    }

    /// <summary>
    /// What the player and game-server clients share: the token, HTTP, and the queue with its
    /// flusher. An event keeps its id through every retry, so the server counts it once.
    /// Callbacks run on the SynchronizationContext the client was made on (Unity's main
    /// thread when made there), else on the thread pool.
    /// </summary>
    public abstract class LaurelCore : IDisposable
    {
        protected readonly LaurelOptions Options;
        protected readonly HttpClient Http;
        readonly SynchronizationContext context;
        readonly object gate = new object();
        List<QueuedEvent> queue;
        readonly SemaphoreSlim sending = new SemaphoreSlim(1, 1);
        readonly Timer timer;
        int batchSize;
        int failures;
        DateTime retryAt = DateTime.MinValue;
        string token;
        readonly Dictionary<string, long> tokens = new Dictionary<string, long>();
        protected readonly CancellationTokenSource Stop = new CancellationTokenSource();

        protected LaurelCore(LaurelOptions options)
        {
            Options = options;
            Http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
            context = SynchronizationContext.Current;
            batchSize = Math.Max(1, options.BatchSize);
            queue = options.Store.Load();
            if (options.FlushInterval > TimeSpan.Zero)
                timer = new Timer(_ => FlushDue().ContinueWith(t => { }, TaskContinuationOptions.OnlyOnFaulted), null, options.FlushInterval, options.FlushInterval);
        }

        /// <summary>Events waiting to be sent.</summary>
        public int Pending { get { lock (gate) return queue.Count; } }

        /// <summary>Stops the flusher and the live stream; what is queued stays in the store.</summary>
        public void Dispose()
        {
            Stop.Cancel();
            if (timer != null) timer.Dispose();
        }

        protected string Enqueue(string player, string stat, object value)
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var e = new QueuedEvent { EventId = Uuid7.New(now), Stat = stat, Value = value, Ts = now, PlayerId = player };
            bool full;
            lock (gate)
            {
                queue.Add(e);
                SaveLocked();
                full = queue.Count >= batchSize;
            }
            if (full) FlushDue().ContinueWith(t => { }, TaskContinuationOptions.OnlyOnFaulted);
            return e.EventId;
        }

        void SaveLocked()
        {
            try { Options.Store.Save(queue); }
            catch (Exception ex) { Tell(LaurelError.Network(ex)); }
        }

        protected void Post(Action action)
        {
            Action safe = () => { try { action(); } catch (Exception) { } };
            if (context != null) context.Post(_ => safe(), null);
            else ThreadPool.QueueUserWorkItem(_ => safe());
        }

        protected void Tell(LaurelError error)
        {
            var handler = Options.OnError;
            if (handler != null) Post(() => handler(error));
        }

        async Task FlushDue()
        {
            if (Stop.IsCancellationRequested || DateTime.UtcNow < retryAt || Pending == 0) return;
            await Flush().ConfigureAwait(false);
        }

        /// <summary>Sends what is queued, in batches, until empty or a batch must wait. Never throws.</summary>
        public async Task<FlushResult> Flush()
        {
            await sending.WaitAsync().ConfigureAwait(false);
            try
            {
                var result = new FlushResult();
                while (!Stop.IsCancellationRequested)
                {
                    List<QueuedEvent> batch;
                    lock (gate) batch = queue.Take(batchSize).ToList();
                    if (batch.Count == 0) break;
                    var error = await SendBatch(batch).ConfigureAwait(false);
                    if (error != null) { result.Error = error; break; }
                    result.Sent += batch.Count;
                }
                result.Pending = Pending;
                return result;
            }
            finally { sending.Release(); }
        }

        async Task<LaurelError> SendBatch(List<QueuedEvent> batch)
        {
            var body = new Dictionary<string, object> { { "events", batch.Select(e => e.ToJson()).ToList() } };
            try
            {
                var answer = (Dictionary<string, object>)await Call("POST", "/v1/events", body).ConfigureAwait(false);
                failures = 0;
                Remember((string)answer["token"]);
                Drop(batch);
                return null;
            }
            catch (LaurelError error)
            {
                if (error.Status == 413 && batch.Count > 1) { batchSize = Math.Max(1, batch.Count / 2); return null; }
                if (error.Retryable || error.Status == 401)
                {
                    failures++;
                    var backoff = Math.Min(Options.MaxBackoff.TotalMilliseconds, 250 * Math.Pow(2, Math.Min(failures, 16)));
                    var wait = error.RetryAfter.HasValue ? error.RetryAfter.Value * 1000.0 : backoff;
                    retryAt = DateTime.UtcNow.AddMilliseconds(wait);
                    Tell(error);
                    return error;
                }
                // Refused for what the events say: those named go, the rest are sent again.
                var named = new HashSet<int>(error.Errors
                    .Where(f => f.ContainsKey("index") && f["index"] is double)
                    .Select(f => (int)(double)f["index"]));
                Drop(named.Count > 0 ? batch.Where((e, i) => named.Contains(i)).ToList() : batch);
                Tell(error);
                return null;
            }
        }

        void Drop(List<QueuedEvent> done)
        {
            var ids = new HashSet<string>(done.Select(e => e.EventId));
            lock (gate)
            {
                queue = queue.Where(e => !ids.Contains(e.EventId)).ToList();
                SaveLocked();
            }
        }

        /// <summary>Read-your-writes tokens merged: the highest position per partition.</summary>
        void Remember(string answer)
        {
            lock (tokens)
                foreach (var pair in answer.Split(','))
                {
                    var parts = pair.Split(':');
                    long position;
                    if (parts.Length != 2 || !long.TryParse(parts[1], out position)) continue;
                    long known;
                    if (!tokens.TryGetValue(parts[0], out known) || position > known) tokens[parts[0]] = position;
                }
        }

        protected void RememberToken(string answer) { Remember(answer); }

        protected string WaitFor()
        {
            lock (tokens) return string.Join(",", tokens.Select(kv => kv.Key + ":" + kv.Value));
        }

        protected async Task<string> CurrentToken(bool fresh)
        {
            if (fresh || token == null) token = await Options.Token().ConfigureAwait(false);
            return token;
        }

        protected HttpRequestMessage Request(string method, string path, string bearer)
        {
            var request = new HttpRequestMessage(new HttpMethod(method), Options.Url.TrimEnd('/') + path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            if (!string.IsNullOrEmpty(Options.Locale)) request.Headers.TryAddWithoutValidation("Accept-Language", Options.Locale);
            return request;
        }

        /// <summary>A JSON call; a refused token is asked for again once. Throws LaurelError.</summary>
        protected async Task<object> Call(string method, string path, object body)
        {
            for (int attempt = 0; ; attempt++)
            {
                HttpResponseMessage response;
                try
                {
                    var request = Request(method, path, await CurrentToken(attempt > 0).ConfigureAwait(false));
                    if (body != null) request.Content = new StringContent(Json.Write(body), Encoding.UTF8, "application/json");
                    using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(Stop.Token))
                    {
                        timeout.CancelAfter(TimeSpan.FromSeconds(30));
                        response = await Http.SendAsync(request, timeout.Token).ConfigureAwait(false);
                    }
                }
                catch (LaurelError) { throw; }
                catch (Exception e) { throw LaurelError.Network(e); }
                using (response)
                {
                    if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0) continue;
                    if (!response.IsSuccessStatusCode) throw await LaurelError.Of(response).ConfigureAwait(false);
                    return Json.Parse(await response.Content.ReadAsStringAsync().ConfigureAwait(false));
                }
            }
        }

        protected async Task<string> Waited(string path, bool waitForFlush)
        {
            if (!waitForFlush) return path;
            await Flush().ConfigureAwait(false);
            var token = WaitFor();
            return token.Length == 0 ? path : path + "?wait_for=" + Uri.EscapeDataString(token);
        }
    }

    /// <summary>A game's client for one player.</summary>
    public sealed class LaurelClient : LaurelCore
    {
        readonly object listeners = new object();
        Action<Dictionary<string, object>> onUnlock;
        Action<Dictionary<string, object>> onProgress;
        Action onLagged;
        Task streaming;
        string lastEventId;
        readonly HashSet<string> told = new HashSet<string>();
        readonly Queue<string> toldOrder = new Queue<string>();

        public LaurelClient(LaurelOptions options) : base(options) { }

        /// <summary>Queues <paramref name="value"/> for <paramref name="stat"/>; returns its event id. Never throws.</summary>
        public string Report(string stat, object value) { return Enqueue(null, stat, value); }

        /// <summary>The player's achievements ({achievements, points_total}).</summary>
        public async Task<Dictionary<string, object>> Achievements(bool waitForFlush = false)
        {
            return (Dictionary<string, object>)await Call("GET", await Waited("/v1/players/me/achievements", waitForFlush).ConfigureAwait(false), null).ConfigureAwait(false);
        }

        /// <summary>The player's stats ({stats, points_total}).</summary>
        public async Task<Dictionary<string, object>> Stats(bool waitForFlush = false)
        {
            return (Dictionary<string, object>)await Call("GET", await Waited("/v1/players/me/stats", waitForFlush).ConfigureAwait(false), null).ConfigureAwait(false);
        }

        /// <summary>The published achievements with earned_percent.</summary>
        public async Task<Dictionary<string, object>> Definitions()
        {
            return (Dictionary<string, object>)await Call("GET", "/v1/achievements", null).ConfigureAwait(false);
        }

        /// <summary>Each unlock, live ({unlock_id, replay, achievement}).</summary>
        public event Action<Dictionary<string, object>> OnUnlock
        {
            add { lock (listeners) onUnlock += value; EnsureStream(); }
            remove { lock (listeners) onUnlock -= value; }
        }

        /// <summary>Progress, live.</summary>
        public event Action<Dictionary<string, object>> OnProgress
        {
            add { lock (listeners) onProgress += value; EnsureStream(); }
            remove { lock (listeners) onProgress -= value; }
        }

        /// <summary>The stream could not say everything missed: read Achievements again.</summary>
        public event Action OnLagged
        {
            add { lock (listeners) onLagged += value; EnsureStream(); }
            remove { lock (listeners) onLagged -= value; }
        }

        void EnsureStream()
        {
            lock (listeners)
                if (streaming == null) streaming = Task.Run(Stream);
        }

        async Task Stream()
        {
            int failures = 0;
            bool fresh = false;
            while (!Stop.IsCancellationRequested)
            {
                double wait = 0;
                try
                {
                    var request = Request("GET", "/v1/players/me/notifications", await CurrentToken(fresh).ConfigureAwait(false));
                    fresh = false;
                    request.Headers.Accept.ParseAdd("text/event-stream");
                    if (lastEventId != null) request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
                    using (var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Stop.Token).ConfigureAwait(false))
                    {
                        if (response.StatusCode == HttpStatusCode.Unauthorized)
                        {
                            fresh = true;
                            failures++;
                            Tell(await LaurelError.Of(response).ConfigureAwait(false));
                            if (failures > 1) wait = Backoff(failures);
                        }
                        else if (!response.IsSuccessStatusCode)
                        {
                            var error = await LaurelError.Of(response).ConfigureAwait(false);
                            Tell(error);
                            failures++;
                            wait = error.RetryAfter.HasValue ? error.RetryAfter.Value * 1000.0 : Backoff(failures);
                        }
                        else
                        {
                            using (var body = await response.Content.ReadAsStreamAsync().ConfigureAwait(false))
                            using (var reader = new StreamReader(body, Encoding.UTF8))
                            using (Stop.Token.Register(() => body.Dispose()))
                            {
                                string name = "", id = null;
                                var data = new StringBuilder();
                                for (;;)
                                {
                                    var line = await reader.ReadLineAsync().ConfigureAwait(false);
                                    if (line == null) break;
                                    if (line.Length == 0)
                                    {
                                        if (name == "ready") failures = 0;
                                        else if (name == "expired") fresh = true;
                                        else if (data.Length > 0) Dispatch(name, data.ToString(), id);
                                        name = ""; id = null; data.Clear();
                                    }
                                    else if (line.StartsWith(":")) { }
                                    else if (line.StartsWith("event:")) name = line.Substring(6).Trim();
                                    else if (line.StartsWith("data:")) { if (data.Length > 0) data.Append('\n'); data.Append(line.Substring(5).TrimStart()); }
                                    else if (line.StartsWith("id:")) id = line.Substring(3).Trim();
                                }
                            }
                            if (!fresh) { failures++; wait = Backoff(failures) / 2; }
                        }
                    }
                }
                catch (Exception e)
                {
                    if (Stop.IsCancellationRequested) return;
                    Tell(LaurelError.Network(e));
                    failures++;
                    wait = Backoff(failures);
                }
                if (wait > 0)
                {
                    try { await Task.Delay(TimeSpan.FromMilliseconds(wait), Stop.Token).ConfigureAwait(false); }
                    catch (TaskCanceledException) { return; }
                }
            }
        }

        double Backoff(int failures)
        {
            return Math.Min(Options.MaxBackoff.TotalMilliseconds, 500 * Math.Pow(2, Math.Min(failures, 16)));
        }

        void Dispatch(string name, string data, string id)
        {
            Dictionary<string, object> value;
            try { value = Json.Parse(data) as Dictionary<string, object>; }
            catch (FormatException) { return; }
            if (name == "unlocked" && value != null)
            {
                if (id != null) lastEventId = id;
                var unlockId = value["unlock_id"] as string;
                lock (told)
                {
                    if (unlockId == null || !told.Add(unlockId)) return;
                    toldOrder.Enqueue(unlockId);
                    if (toldOrder.Count > 10000) told.Remove(toldOrder.Dequeue());
                }
                Action<Dictionary<string, object>> handler;
                lock (listeners) handler = onUnlock;
                if (handler != null) Post(() => handler(value));
            }
            else if (name == "progress" && value != null)
            {
                Action<Dictionary<string, object>> handler;
                lock (listeners) handler = onProgress;
                if (handler != null) Post(() => handler(value));
            }
            else if (name == "lagged")
            {
                Action handler;
                lock (listeners) handler = onLagged;
                if (handler != null) Post(handler);
            }
        }
    }

    /// <summary>A game server's client: events for any player (a laurel:server token), reads, grants (laurel:admin).</summary>
    public sealed class LaurelServer : LaurelCore
    {
        public LaurelServer(LaurelOptions options) : base(options) { }

        /// <summary>Queues <paramref name="value"/> for <paramref name="player"/>'s <paramref name="stat"/>; returns its event id.</summary>
        public string Report(string player, string stat, object value) { return Enqueue(player, stat, value); }

        public async Task<Dictionary<string, object>> Achievements(string player, bool waitForFlush = false)
        {
            return (Dictionary<string, object>)await Call("GET", await Waited("/v1/players/" + Uri.EscapeDataString(player) + "/achievements", waitForFlush).ConfigureAwait(false), null).ConfigureAwait(false);
        }

        public async Task<Dictionary<string, object>> Stats(string player, bool waitForFlush = false)
        {
            return (Dictionary<string, object>)await Call("GET", await Waited("/v1/players/" + Uri.EscapeDataString(player) + "/stats", waitForFlush).ConfigureAwait(false), null).ConfigureAwait(false);
        }

        /// <summary>Grants an achievement through the log; returns the read token.</summary>
        public async Task<string> Grant(string player, string achievement)
        {
            var answer = (Dictionary<string, object>)await Call("POST", "/v1/admin/players/" + Uri.EscapeDataString(player) + "/grants",
                new Dictionary<string, object> { { "achievement_id", achievement } }).ConfigureAwait(false);
            var token = (string)answer["token"];
            RememberToken(token);
            return token;
        }
    }
}
