const axios = require('axios');

class TaskDriverClient {
  constructor(baseURL = 'http://localhost:3000/api') {
    this.baseURL = baseURL;
    this.token = null;
  }

  async login(agentName, projectId) {
    const response = await axios.post(`${this.baseURL}/auth/login`, {
      agentName,
      projectId
    }, { headers: { Authorization: 'Bearer agent-token' } });
    this.token = response.data.data.token;
    return response.data.data;
  }

  async getNextTask(agentName, projectId) {
    const response = await axios.post(
      `${this.baseURL}/agents/${agentName}/next-task`,
      { projectId },
      { headers: { Authorization: `Bearer ${this.token}` } }
    );
    return response.data.data;
  }

  async completeTask(taskId, result, outputs = {}) {
    const response = await axios.post(
      `${this.baseURL}/tasks/${taskId}/complete`,
      { result, outputs },
      { headers: { Authorization: `Bearer ${this.token}` } }
    );
    return response.data.data;
  }
}

// Usage
const client = new TaskDriverClient();
await client.login('my-agent', 'project-id');
const task = await client.getNextTask('my-agent', 'project-id');
await client.completeTask(task.id, 'Task completed successfully');
