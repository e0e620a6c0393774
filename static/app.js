// Placeholder page: which node this is, and the tasks it holds.
const nodeLine = document.getElementById('node');
const list = document.getElementById('tasks');

async function refresh() {
  try {
    const cluster = await (await fetch('/api/cluster')).json();
    nodeLine.textContent = `node ${cluster.node_id} · ${cluster.role} · term ${cluster.term} · leader ${cluster.leader_id ?? 'unknown'}`;
    const page = await (await fetch('/api/tasks?limit=1000')).json();
    list.replaceChildren(...page.tasks.map((task) => {
      const item = document.createElement('li');
      item.textContent = `[${task.status}] ${task.title}`;
      return item;
    }));
  } catch (err) {
    nodeLine.textContent = `unreachable: ${err}`;
  }
}

refresh();
setInterval(refresh, 2000);
