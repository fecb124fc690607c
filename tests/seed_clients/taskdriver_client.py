import requests

class TaskDriverClient:
    def __init__(self, base_url='http://localhost:3000/api'):
        self.base_url = base_url
        self.token = None
    
    def login(self, agent_name, project_id):
        response = requests.post(f'{self.base_url}/auth/login', json={
            'agentName': agent_name,
            'projectId': project_id
        }, headers={'Authorization': 'Bearer agent-token'})
        data = response.json()
        if data['success']:
            self.token = data['data']['token']
            return data['data']
        raise Exception(data['error'])
    
    def get_next_task(self, agent_name, project_id):
        response = requests.post(
            f'{self.base_url}/agents/{agent_name}/next-task',
            json={'projectId': project_id},
            headers={'Authorization': f'Bearer {self.token}'}
        )
        data = response.json()
        if data['success']:
            return data['data']
        raise Exception(data['error'])
    
    def complete_task(self, task_id, result, outputs=None):
        response = requests.post(
            f'{self.base_url}/tasks/{task_id}/complete',
            json={'result': result, 'outputs': outputs or {}},
            headers={'Authorization': f'Bearer {self.token}'}
        )
        data = response.json()
        if data['success']:
            return data['data']
        raise Exception(data['error'])

# Usage
client = TaskDriverClient()
client.login('my-agent', 'project-id')
task = client.get_next_task('my-agent', 'project-id')
client.complete_task(task['id'], 'Task completed successfully')
