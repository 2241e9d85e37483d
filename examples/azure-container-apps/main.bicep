// py-code-mode's MCP server on Azure Container Apps, with Azure Cache for Redis
// holding tools, skills and artifacts (one prefix per tenant).
//
//   az deployment group create -g my-rg -f main.bicep \
//     -p image=myregistry.azurecr.io/py-code-mode-mcp:latest token=$(openssl rand -hex 32)

@description('Where the resources go')
param location string = resourceGroup().location

@description('The image built from examples/azure-container-apps/Dockerfile')
param image string

@description('Bearer token MCP clients send (Authorization: Bearer ...)')
@secure()
param token string

@description('Key prefix in Redis: one prefix is one isolated library')
param prefix string = 'py-code-mode'

@description('Most replicas; sessions are pinned by Mcp-Session-Id')
param maxReplicas int = 3

var name = 'py-code-mode'

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: { sku: { name: 'PerGB2018' }, retentionInDays: 30 }
}

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  name: '${name}-${uniqueString(resourceGroup().id)}'
  location: location
  properties: {
    sku: { name: 'Basic', family: 'C', capacity: 0 }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
  }
}

resource env 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${name}-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  properties: {
    managedEnvironmentId: env.id
    configuration: {
      ingress: {
        external: true
        targetPort: 8080
        transport: 'http'
        // One MCP session talks to one replica (its worker holds the variables).
        stickySessions: { affinity: 'sticky' }
      }
      secrets: [
        {
          name: 'redis-url'
          value: 'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:${redis.properties.sslPort}'
        }
        { name: 'mcp-token', value: token }
      ]
    }
    template: {
      containers: [
        {
          name: name
          image: image
          resources: { cpu: json('1.0'), memory: '2Gi' }
          env: [
            { name: 'PY_CODE_MODE_REDIS_URL', secretRef: 'redis-url' }
            { name: 'PY_CODE_MODE_PREFIX', value: prefix }
            { name: 'PY_CODE_MODE_TOKEN', secretRef: 'mcp-token' }
          ]
          probes: [
            { type: 'Liveness', tcpSocket: { port: 8080 }, periodSeconds: 10 }
          ]
        }
      ]
      scale: { minReplicas: 1, maxReplicas: maxReplicas }
    }
  }
}

output url string = 'https://${app.properties.configuration.ingress.fqdn}/mcp'
