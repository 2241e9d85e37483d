//! Prints tool-call figures as agent code sees them (recorded in docs/tools.md):
//! the median of 100 MCP calls over stdio and streamable HTTP, of 100 CLI tool
//! calls (`echo`), and 10 calls of a 100 ms tool run one after another versus
//! concurrently.
//!
//!     PY_CODE_MODE_TEST_VENV=.venv cargo run -p py-code-mode --example tool_bench
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;

use py_code_mode::{FileStorage, Session, SubprocessConfig};
use py_code_mode_test_support::servers::{ServerProcess, repo_root, venv_python};

const CODE: &str = r#"
import asyncio, statistics, time
def median_us(call):
    call()  # warm: connects
    samples = []
    for _ in range(100):
        t = time.perf_counter(); call(); samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6
stdio = median_us(lambda: tools.stdio.echo(text="x"))
http = median_us(lambda: tools.http.echo(text="x"))
cli = median_us(lambda: tools.say(text="x"))
t = time.perf_counter()
for _ in range(10):
    tools.stdio.sleep_ms(ms=100)
sequential = time.perf_counter() - t
async def together():
    return await asyncio.gather(*(tools.stdio.sleep_ms.acall(ms=100) for _ in range(10)))
t = time.perf_counter(); asyncio.run(together()); concurrent = time.perf_counter() - t
print(f"MCP call from agent code, median of 100: stdio {stdio:.0f} us, streamable HTTP {http:.0f} us")
print(f"CLI tool call (echo) from agent code, median of 100: {cli:.0f} us")
print(f"10 calls of a 100 ms MCP tool: sequential {sequential*1000:.0f} ms, concurrent (acall + gather) {concurrent*1000:.0f} ms")
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = ServerProcess::mcp_test_server("streamable-http");
    let dir = tempfile::tempdir()?;
    let tools = dir.path().join("tools");
    std::fs::create_dir_all(&tools)?;
    let script = repo_root().join("tests/servers/mcp_test_server.py");
    std::fs::write(
        tools.join("stdio.yaml"),
        format!(
            "name: stdio\ntype: mcp\ncommand: {:?}\nargs: [{:?}, stdio]\n",
            venv_python().display().to_string(),
            script.display().to_string()
        ),
    )?;
    std::fs::write(
        tools.join("http.yaml"),
        format!(
            "name: http\ntype: mcp\ntransport: streamable-http\nurl: http://127.0.0.1:{}/mcp\n",
            server.port
        ),
    )?;
    std::fs::write(
        tools.join("say.yaml"),
        "name: say\ntype: cli\ncommand: echo\nargs: '{text}'\n",
    )?;
    let session = Session::builder(Arc::new(FileStorage::open(dir.path())?))
        .executor(SubprocessConfig {
            python: Some(venv_python()),
            ..SubprocessConfig::default()
        })
        .build()
        .await?;
    let result = session.run(CODE).await?;
    println!("{}", result.to_text());
    session.close().await;
    Ok(())
}
